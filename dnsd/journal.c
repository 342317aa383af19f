/* journal.c -- append-only journal of dynamic update operations: framing,
 * CRC, replay with torn-end repair, fsync'd appends and compaction by
 * rewrite. Control thread (and dnsd --check) only. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "journal.h"
#include "util/log.h"

static const char magic[8] = { 'M', 'D', 'N', 'S', 'J', 'R', 'N', '1' };

enum { JOURNAL_FILE_MAX = 256 * 1024 * 1024 };

struct journal {
	char *path;
	int fd;
	size_t records;
};

uint32_t journal_crc32(const uint8_t *buf, size_t len)
{
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= buf[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int journal_encode(const struct journal_op *op, uint8_t *out, size_t cap)
{
	if (op->kind < JOURNAL_ADD || op->kind > JOURNAL_BEGIN || op->rdlen > JOURNAL_RDATA_MAX ||
	    !wire_name_valid(op->owner, op->ownerlen) || cap < JOURNAL_HDR)
		return -1;
	struct wire_writer w;
	wire_writer_init(&w, out + JOURNAL_HDR, cap - JOURNAL_HDR);
	wire_write_u8(&w, op->kind);
	wire_write_name(&w, op->owner, op->ownerlen, false);
	wire_write_u16(&w, op->type);
	wire_write_u32(&w, op->ttl);
	wire_write_u16(&w, op->rdlen);
	wire_write_bytes(&w, op->rdata, op->rdlen);
	if (w.err)
		return -1;
	put32(out, (uint32_t)w.pos);
	put32(out + 4, journal_crc32(out + JOURNAL_HDR, w.pos));
	return (int)(JOURNAL_HDR + w.pos);
}

enum journal_dec journal_decode(const uint8_t *buf, size_t len, struct journal_op *op,
                                size_t *used)
{
	if (len < JOURNAL_HDR)
		return JOURNAL_DEC_TORN;
	uint32_t plen = get32(buf);
	if (plen > JOURNAL_REC_MAX || plen < 1 + 1 + 8)
		return JOURNAL_DEC_BAD;
	if (len - JOURNAL_HDR < plen)
		return JOURNAL_DEC_TORN;
	const uint8_t *p = buf + JOURNAL_HDR;
	if (journal_crc32(p, plen) != get32(buf + 4))
		return JOURNAL_DEC_BAD;
	struct wire_reader r;
	wire_reader_init(&r, p, plen);
	memset(op, 0, sizeof(*op));
	op->kind = wire_read_u8(&r);
	/* Names are stored uncompressed: a pointer would be read as one, so
	 * check the stored length equals the expanded one. */
	size_t start = r.pos;
	op->ownerlen = wire_read_name(&r, op->owner);
	if (!r.err && r.pos - start != op->ownerlen)
		return JOURNAL_DEC_BAD;
	op->type = wire_read_u16(&r);
	op->ttl = wire_read_u32(&r);
	op->rdlen = wire_read_u16(&r);
	op->rdata = wire_read_ptr(&r, op->rdlen);
	if (r.err || r.pos != plen || op->kind < JOURNAL_ADD || op->kind > JOURNAL_BEGIN ||
	    op->rdlen > JOURNAL_RDATA_MAX)
		return JOURNAL_DEC_BAD;
	wire_name_lower(op->owner, op->ownerlen);
	*used = JOURNAL_HDR + plen;
	return JOURNAL_DEC_OK;
}

/* Reads the whole file (bounded). 0, 1 if it does not exist, -1. */
static int read_all(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	*buf = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) == -1 || st.st_size > JOURNAL_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path,
		         st.st_size > JOURNAL_FILE_MAX ? "larger than 256 MiB" : strerror(errno));
		close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size;
	uint8_t *b = malloc(cap ? cap : 1);
	if (!b) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, b + got, cap - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(b);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

long journal_replay(const char *path, bool repair, journal_replay_fn fn, void *arg, char *err,
                    size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc = read_all(path, &buf, &len, err, errlen);
	if (rc != 0)
		return rc == 1 ? 0 : -1;
	long count = -1;
	size_t off = 0;
	/* A group being read: its ops wait in grp until the last one is in. */
	struct journal_op *grp = NULL;
	if (len < sizeof(magic)) {
		/* A crash while creating the file: nothing was ever acknowledged. */
		if (len > 0 && memcmp(buf, magic, len) != 0) {
			snprintf(err, errlen, "%s: not a dnsd journal", path);
			goto out;
		}
		if (len > 0)
			log_warn("%s: torn journal header ignored", path);
		off = len;
		count = 0;
		if (repair && len > 0 && truncate(path, 0) == -1)
			log_warn("%s: cannot truncate: %s", path, strerror(errno));
		goto out;
	}
	if (memcmp(buf, magic, sizeof(magic)) != 0) {
		snprintf(err, errlen, "%s: not a dnsd journal (bad magic)", path);
		goto out;
	}
	off = sizeof(magic);
	long n = 0;
	size_t grp_n = 0, grp_want = 0, grp_off = 0;
	while (off < len) {
		struct journal_op op;
		size_t used;
		enum journal_dec d = journal_decode(buf + off, len - off, &op, &used);
		if (d != JOURNAL_DEC_OK && all_zero(buf + off, len - off)) {
			/* Power loss after the file grew but before the data hit
			 * the disk: nothing in it was acknowledged. */
			size_t cut = grp_want ? grp_off : off;
			log_warn("%s: zero-filled tail at offset %zu (%zu bytes) ignored%s", path, off,
			         len - off, repair ? ", cut off" : "");
			if (repair && truncate(path, (off_t)cut) == -1) {
				snprintf(err, errlen, "%s: cannot cut the zero-filled tail: %s", path,
				         strerror(errno));
				goto out;
			}
			grp_want = 0;
			break;
		}
		if (d == JOURNAL_DEC_TORN) {
			size_t cut = grp_want ? grp_off : off;
			log_warn("%s: torn last %s at offset %zu (%zu bytes) ignored%s", path,
			         grp_want ? "update (a group cut short)" : "record", cut, len - cut,
			         repair ? ", cut off" : "");
			if (repair && truncate(path, (off_t)cut) == -1) {
				snprintf(err, errlen, "%s: cannot cut the torn record: %s", path,
				         strerror(errno));
				goto out;
			}
			grp_want = 0;
			break;
		}
		if (d == JOURNAL_DEC_BAD) {
			snprintf(err, errlen, "%s: offset %zu: corrupt record (bad CRC or contents)", path,
			         off);
			goto out;
		}
		if (op.kind == JOURNAL_BEGIN) {
			if (grp_want || op.ttl == 0 || op.ttl > JOURNAL_GROUP_MAX) {
				snprintf(err, errlen, "%s: offset %zu: bad update group", path, off);
				goto out;
			}
			free(grp);
			grp = calloc(op.ttl, sizeof(*grp));
			if (!grp) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			grp_want = op.ttl;
			grp_n = 0;
			grp_off = off;
		} else if (grp_want) {
			grp[grp_n++] = op;    /* rdata points into buf, alive until the end */
			if (grp_n == grp_want) {
				for (size_t i = 0; i < grp_n; i++)
					if (fn && fn(arg, &grp[i]) == -1) {
						snprintf(err, errlen, "%s: offset %zu: record cannot be applied",
						         path, grp_off);
						goto out;
					}
				grp_want = 0;
			}
		} else if (fn && fn(arg, &op) == -1) {
			snprintf(err, errlen, "%s: offset %zu: record cannot be applied", path, off);
			goto out;
		}
		off += used;
		n++;
	}
	if (grp_want) {
		/* The file ends inside a group: a crash between its writes. */
		log_warn("%s: torn last update (a group cut short) at offset %zu (%zu bytes) ignored%s",
		         path, grp_off, len - grp_off, repair ? ", cut off" : "");
		if (repair && truncate(path, (off_t)grp_off) == -1) {
			snprintf(err, errlen, "%s: cannot cut the torn update: %s", path, strerror(errno));
			goto out;
		}
		n -= (long)grp_n + 1;
	}
	count = n;
out:
	free(grp);
	free(buf);
	return count;
}

static int fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

struct journal *journal_open(const char *path, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(path))) {
		free(j);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	if (j->fd == -1 || fstat(j->fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		journal_close(j);
		return NULL;
	}
	if (st.st_size == 0) {
		if (write_full(j->fd, (const uint8_t *)magic, sizeof(magic)) == -1 ||
		    fdatasync(j->fd) == -1 || fsync_dir(path) == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			journal_close(j);
			return NULL;
		}
	}
	return j;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd != -1)
		close(j->fd);
	free(j->path);
	free(j);
}

int journal_append(struct journal *j, const struct journal_op *ops, size_t n)
{
	if (n == 0)
		return 0;
	if (n > JOURNAL_GROUP_MAX)
		return -1;
	off_t start = lseek(j->fd, 0, SEEK_END);
	if (start == -1)
		return -1;
	/* One buffer, one write: the BEGIN record and every operation. */
	size_t cap = (n + 1) * (JOURNAL_HDR + JOURNAL_REC_MAX), len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -1;
	int rc = -1;
	size_t nrec = n;
	if (n > 1) {
		struct journal_op begin = { .kind = JOURNAL_BEGIN, .ownerlen = 1, .ttl = (uint32_t)n };
		int l = journal_encode(&begin, buf, cap);
		if (l < 0)
			goto out;
		len = (size_t)l;
		nrec++;
	}
	for (size_t i = 0; i < n; i++) {
		int l = journal_encode(&ops[i], buf + len, cap - len);
		if (l < 0)
			goto out;
		len += (size_t)l;
	}
	if (write_full(j->fd, buf, len) == -1 || fdatasync(j->fd) == -1)
		goto out;
	j->records += nrec;
	rc = 0;
out:
	if (rc == -1) {
		log_err("journal %s: write failed: %s", j->path, strerror(errno));
		if (ftruncate(j->fd, start) == -1 || fdatasync(j->fd) == -1)
			log_err("journal %s: cannot cut back a partial write: %s", j->path,
			        strerror(errno));
	}
	free(buf);
	return rc;
}

int journal_rewrite(struct journal *j, const struct journal_op *ops, size_t n)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", j->path) >= (int)sizeof(tmp))
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_err("journal %s: %s", tmp, strerror(errno));
		return -1;
	}
	uint8_t *rec = malloc(JOURNAL_HDR + JOURNAL_REC_MAX);
	int rc = -1;
	if (!rec || write_full(fd, (const uint8_t *)magic, sizeof(magic)) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int len = journal_encode(&ops[i], rec, JOURNAL_HDR + JOURNAL_REC_MAX);
		if (len < 0 || write_full(fd, rec, (size_t)len) == -1)
			goto out;
	}
	if (fsync(fd) == -1 || rename(tmp, j->path) == -1)
		goto out;
	fsync_dir(j->path);
	rc = 0;
out:
	if (rc == -1) {
		log_err("journal %s: compaction failed: %s", j->path, strerror(errno));
		unlink(tmp);
	}
	close(fd);
	free(rec);
	if (rc == 0) {
		int nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (nfd == -1) {
			log_err("journal %s: reopen: %s", j->path, strerror(errno));
			return -1;
		}
		close(j->fd);
		j->fd = nfd;
		j->records = n;
	}
	return rc;
}

size_t journal_records(const struct journal *j)
{
	return j->records;
}

void journal_set_records(struct journal *j, size_t n)
{
	j->records = n;
}
