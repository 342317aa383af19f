// resolve.js -- the client matrix's Node resolver (tests/integration/
// test_clients.py). "node resolve.js lookup NAME..." uses dns.lookup
// (getaddrinfo), "node resolve.js resolve NAME..." dns.resolve4 and
// dns.resolve6 (c-ares, the union); lines as resolve.c prints them.
'use strict';
const dns = require('dns').promises;

const NOTFOUND = new Set(['ENOTFOUND', 'ENODATA']);

async function one(mode, name) {
	if (mode === 'lookup') {
		try {
			const all = await dns.lookup(name, { all: true, verbatim: true });
			return [...new Set(all.map((a) => a.address))];
		} catch (e) {
			if (NOTFOUND.has(e.code)) return null;
			throw e;
		}
	}
	const got = await Promise.allSettled([dns.resolve4(name), dns.resolve6(name)]);
	const ok = got.filter((g) => g.status === 'fulfilled').flatMap((g) => g.value);
	if (ok.length) return [...new Set(ok)];
	const bad = got.map((g) => g.reason).find((e) => e && !NOTFOUND.has(e.code));
	if (bad) throw bad;
	return null;
}

async function main() {
	const [mode, ...names] = process.argv.slice(2);
	for (const name of names) {
		try {
			const addrs = await one(mode, name);
			console.log(addrs ? `${name}\tok\t${addrs.join(' ')}` : `${name}\tnotfound`);
		} catch (e) {
			console.log(`${name}\terror\t${e.code || e.message}`);
		}
	}
}

main();
