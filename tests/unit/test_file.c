/* test_file.c -- a whole file into memory (file.h): its bytes, the bound,
 * and the reasons it gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"
#include "tap.h"

int main(void)
{
	char path[] = "/tmp/test_file.XXXXXX", err[256], *buf = NULL;
	size_t len = 0;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return 1;
	for (int i = 0; i < 40000; i++)   /* more than the first buffer */
		fputc('a' + i % 26, f);
	fclose(f);
	ok(file_read(path, 1 << 20, &buf, &len, err, sizeof(err)) == 0 && len == 40000 &&
	   buf[0] == 'a' && buf[39999] == 'a' + 39999 % 26, "40000 bytes, all of them");
	free(buf);
	ok(file_read(path, 32768, &buf, &len, err, sizeof(err)) == -1 && strstr(err, path) &&
	   strstr(err, "larger than 32768 bytes"), "over the bound: %s", err);
	ok(file_read("/nonexistent/x", 1 << 20, &buf, &len, err, sizeof(err)) == -1 &&
	   strstr(err, "No such file"), "missing: %s", err);
	ok(file_read("/tmp", 1 << 20, &buf, &len, err, sizeof(err)) == -1 &&
	   strstr(err, "Is a directory"), "a directory: %s", err);
	f = fopen(path, "w");
	fclose(f);
	ok(file_read(path, 1 << 20, &buf, &len, err, sizeof(err)) == 0 && len == 0, "empty: 0 bytes");
	free(buf);
	unlink(path);
	return done_testing();
}
