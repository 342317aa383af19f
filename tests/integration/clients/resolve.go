// resolve.go -- the client matrix's Go resolver (tests/integration/
// test_clients.py): the pure-Go resolver (PreferGo), LookupHost for each
// name on the command line, printing lines as resolve.c does.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	r := &net.Resolver{PreferGo: true}
	for _, name := range os.Args[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		addrs, err := r.LookupHost(ctx, name)
		cancel()
		var de *net.DNSError
		switch {
		case err == nil:
			fmt.Printf("%s\tok\t%s\n", name, strings.Join(addrs, " "))
		case errors.As(err, &de) && de.IsNotFound:
			fmt.Printf("%s\tnotfound\n", name)
		default:
			fmt.Printf("%s\terror\t%v\n", name, err)
		}
	}
}
