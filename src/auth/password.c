/* password — see password.h. */
#include "auth/password.h"

#include "common/fsutil.h"
#include "common/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(PASSWORD_HASH_LEN == crypto_pwhash_STRBYTES, "hash buffer size");

/* A passwd file larger than this is refused rather than read in part. */
#define PASSWD_FILE_MAX (8u * 1024 * 1024)
#define HASH_PREFIX "$argon2id$"

static unsigned long long hash_opslimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
static size_t hash_memlimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;

const char *passwd_strerror(int status)
{
	switch (status) {
	case PASSWD_OK:           return "ok";
	case PASSWD_ERR_SYSTEM:   return "cannot read or write the passwd file";
	case PASSWD_ERR_FORMAT:   return "malformed passwd file";
	case PASSWD_ERR_NAME:     return "invalid user name";
	case PASSWD_ERR_NOUSER:   return "no such user";
	case PASSWD_ERR_DENIED:   return "wrong user name or password";
	case PASSWD_ERR_PASSWORD: return "empty or overlong password";
	case PASSWD_ERR_HASH:     return "not an argon2id hash";
	}
	return "unknown error";
}

void password_set_limits(unsigned long long opslimit, size_t memlimit)
{
	hash_opslimit = opslimit;
	hash_memlimit = memlimit;
}

static bool password_acceptable(const char *password)
{
	size_t n = password ? strnlen(password, PASSWORD_MAX + 1) : 0;

	return n > 0 && n <= PASSWORD_MAX;
}

int password_hash(const char *password, char out[PASSWORD_HASH_LEN])
{
	if (!password_acceptable(password) || sodium_init() < 0)
		return -1;
	return crypto_pwhash_str_alg(out, password, strlen(password), hash_opslimit,
				     hash_memlimit, crypto_pwhash_ALG_ARGON2ID13) == 0 ? 0 : -1;
}

/* A string crypto_pwhash_str_verify may be given: argon2id, bounded. */
static bool hash_usable(const char *hash)
{
	return hash != NULL && strncmp(hash, HASH_PREFIX, strlen(HASH_PREFIX)) == 0 &&
	       strnlen(hash, PASSWORD_HASH_LEN) < PASSWORD_HASH_LEN;
}

bool password_verify(const char *hash, const char *password)
{
	if (!hash_usable(hash) || !password_acceptable(password) || sodium_init() < 0)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

bool password_needs_rehash(const char *hash)
{
	if (!hash_usable(hash))
		return true;
	return crypto_pwhash_str_needs_rehash(hash, hash_opslimit, hash_memlimit) != 0;
}

/* ---- the file ----------------------------------------------------------- */

/*
 * One line of the file.  Comment and blank lines have name == NULL and are
 * written back verbatim; a user line is rebuilt from name, hash and the
 * fields after the hash only when it changes, so untouched lines keep
 * their exact text.
 */
struct pw_line {
	char *text;             /* without the newline */
	char *name;             /* NULL for comments and blank lines */
	char *hash;
	size_t tail;            /* offset in text of the fields after HASH: */
};

/* What stat said about the file when we last read or wrote it. */
struct file_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
};

struct passwd_file {
	char *path;
	struct pw_line *lines;
	size_t n_lines;
	bool loaded;            /* id below describes what lines hold */
	struct file_id id;
	int status;             /* PASSWD_OK or PASSWD_ERR_FORMAT for that content */
	unsigned error_line;
	char dummy_hash[PASSWORD_HASH_LEN];
};

static void lines_free(struct pw_line *lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(lines[i].text);
		free(lines[i].name);
		free(lines[i].hash);
	}
	free(lines);
}

static bool file_id_equal(const struct file_id *a, const struct file_id *b)
{
	if (a->exists != b->exists)
		return false;
	if (!a->exists)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static void file_id_of(const struct stat *st, struct file_id *id)
{
	*id = (struct file_id){ .exists = true, .dev = st->st_dev, .ino = st->st_ino,
				.size = st->st_size, .mtim = st->st_mtim };
}

/* Current identity of path; -1 with errno on errors other than ENOENT. */
static int file_id_stat(const char *path, struct file_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return -1;
		*id = (struct file_id){ .exists = false };
		return 0;
	}
	file_id_of(&st, id);
	return 0;
}

static char *strndup_or_null(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/*
 * Parse one line (already without its newline) into *l.  1 when it is a
 * user line, 0 for comments and blanks, -1 when malformed, -2 when out of
 * memory.
 */
static int line_parse(const char *s, size_t n, struct pw_line *l)
{
	const char *colon, *hash, *hash_end;
	size_t i = 0;

	*l = (struct pw_line){ 0 };
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	l->text = strndup_or_null(s, n);
	if (l->text == NULL)
		return -2;
	if (i == n || s[i] == '#')
		return 0;
	colon = memchr(s, ':', n);
	if (colon == NULL)
		return -1;
	hash = colon + 1;
	hash_end = memchr(hash, ':', n - (size_t)(hash - s));
	if (hash_end == NULL)
		hash_end = s + n;
	/* A file edited on Windows: the CR is not part of the hash. */
	while (hash_end > hash && hash_end[-1] == '\r')
		hash_end--;
	l->name = strndup_or_null(s, (size_t)(colon - s));
	l->hash = strndup_or_null(hash, (size_t)(hash_end - hash));
	if (l->name == NULL || l->hash == NULL)
		return -2;
	if (!name_valid(l->name))
		return -1;
	l->tail = hash_end < s + n && *hash_end == ':' ? (size_t)(hash_end - s) + 1 : n;
	return 1;
}

/* Parse a whole file.  PASSWD_OK, _FORMAT (with *bad_line) or _SYSTEM. */
static int file_parse(const char *buf, size_t len, struct pw_line **out, size_t *n_out,
		      unsigned *bad_line)
{
	struct pw_line *lines = NULL;
	size_t n = 0, cap = 0;
	const char *p = buf, *end = buf + len;
	int status = PASSWD_OK;

	if (memchr(buf, '\0', len) != NULL) {
		*bad_line = 1;
		for (const char *q = buf; *q; q++)
			*bad_line += *q == '\n';
		return PASSWD_ERR_FORMAT;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t linelen = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int r;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pw_line *nl2 = realloc(lines, ncap * sizeof(*lines));
			if (nl2 == NULL) {
				status = PASSWD_ERR_SYSTEM;
				break;
			}
			lines = nl2;
			cap = ncap;
		}
		r = line_parse(p, linelen, &lines[n]);
		n++;
		if (r == -2) {
			errno = ENOMEM;
			status = PASSWD_ERR_SYSTEM;
			break;
		}
		if (r < 0) {
			*bad_line = (unsigned)n;
			status = PASSWD_ERR_FORMAT;
			break;
		}
		if (r == 1) {
			for (size_t i = 0; i + 1 < n; i++) {
				if (lines[i].name && strcmp(lines[i].name, lines[n - 1].name) == 0) {
					*bad_line = (unsigned)n;
					status = PASSWD_ERR_FORMAT;
					break;
				}
			}
			if (status != PASSWD_OK)
				break;
		}
		p += linelen + (nl ? 1 : 0);
	}
	if (status != PASSWD_OK) {
		lines_free(lines, n);
		return status;
	}
	*out = lines;
	*n_out = n;
	return PASSWD_OK;
}

/* Read the file through one descriptor so that the identity we remember is
 * that of the bytes we parsed. */
static int file_read_with_id(const char *path, char **buf, size_t *len, struct file_id *id)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t n = 0, want;
	char *b;
	int saved;

	if (fd < 0) {
		if (errno != ENOENT)
			return -1;
		*id = (struct file_id){ .exists = false };
		*buf = NULL;
		*len = 0;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || (uintmax_t)st.st_size > PASSWD_FILE_MAX) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	want = (size_t)st.st_size;
	b = malloc(want + 1);
	if (b == NULL)
		goto fail;
	while (n < want) {
		ssize_t r = read(fd, b + n, want - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			saved = errno;
			free(b);
			errno = saved;
			goto fail;
		}
		if (r == 0)
			break;          /* shrunk meanwhile: its mtime changed, we reread */
		n += (size_t)r;
	}
	b[n] = '\0';
	close(fd);
	file_id_of(&st, id);
	*buf = b;
	*len = n;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int passwd_reload(struct passwd_file *pf)
{
	struct file_id now;
	struct pw_line *lines = NULL;
	size_t n = 0, len;
	char *buf;
	int status;

	if (file_id_stat(pf->path, &now) < 0)
		return PASSWD_ERR_SYSTEM;
	if (pf->loaded && file_id_equal(&now, &pf->id))
		return pf->status;
	if (file_read_with_id(pf->path, &buf, &len, &now) < 0)
		return PASSWD_ERR_SYSTEM;
	status = buf ? file_parse(buf, len, &lines, &n, &pf->error_line) : PASSWD_OK;
	free(buf);
	if (status == PASSWD_ERR_SYSTEM)
		return status;
	/* A file we cannot parse replaces what we had: a user removed by an
	 * edit with a typo elsewhere must not keep logging in. */
	lines_free(pf->lines, pf->n_lines);
	pf->lines = lines;
	pf->n_lines = n;
	pf->id = now;
	pf->loaded = true;
	pf->status = status;
	return status;
}

unsigned passwd_error_line(const struct passwd_file *pf)
{
	return pf->status == PASSWD_ERR_FORMAT ? pf->error_line : 0;
}

struct passwd_file *passwd_open(const char *path)
{
	struct passwd_file *pf;
	unsigned char pw[16];
	char pwhex[sizeof(pw) * 2 + 1];
	bool ok;

	if (sodium_init() < 0) {
		errno = ENOSYS;
		return NULL;
	}
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL)
		return NULL;
	pf->path = strdup(path);
	/* The dummy verified for unknown users costs what a real hash made now
	 * costs; its password is random and forgotten. */
	randombytes_buf(pw, sizeof(pw));
	sodium_bin2hex(pwhex, sizeof(pwhex), pw, sizeof(pw));
	ok = pf->path != NULL && password_hash(pwhex, pf->dummy_hash) == 0;
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(pwhex, sizeof(pwhex));
	if (!ok) {
		passwd_close(pf);
		errno = ENOMEM;
		return NULL;
	}
	passwd_reload(pf);
	return pf;
}

void passwd_close(struct passwd_file *pf)
{
	if (pf == NULL)
		return;
	lines_free(pf->lines, pf->n_lines);
	free(pf->path);
	free(pf);
}

static struct pw_line *find_user(struct passwd_file *pf, const char *name)
{
	for (size_t i = 0; i < pf->n_lines; i++)
		if (pf->lines[i].name && strcmp(pf->lines[i].name, name) == 0)
			return &pf->lines[i];
	return NULL;
}

/* The up-to-date line of a user, or why there is none. */
static int fresh_line(struct passwd_file *pf, const char *name, struct pw_line **out)
{
	int status;

	if (!name_valid(name))
		return PASSWD_ERR_NAME;
	status = passwd_reload(pf);
	if (status != PASSWD_OK)
		return status;
	*out = find_user(pf, name);
	return *out ? PASSWD_OK : PASSWD_ERR_NOUSER;
}

int passwd_lookup(struct passwd_file *pf, const char *name, char hash[PASSWORD_HASH_LEN])
{
	struct pw_line *l = NULL;
	int status = fresh_line(pf, name, &l);
	size_t n;

	if (status != PASSWD_OK)
		return status;
	n = strlen(l->hash);
	if (n >= PASSWORD_HASH_LEN)
		n = 0;                  /* not a hash of ours: unusable anyway */
	memcpy(hash, l->hash, n);
	hash[n] = '\0';
	return PASSWD_OK;
}

int passwd_verify(struct passwd_file *pf, const char *name, const char *password)
{
	char hash[PASSWORD_HASH_LEN];
	int status = name_valid(name) ? passwd_lookup(pf, name, hash) : PASSWD_ERR_NOUSER;
	bool real = status == PASSWD_OK && hash_usable(hash);
	bool match;

	if (status != PASSWD_OK && status != PASSWD_ERR_NOUSER)
		return status;
	if (!password_acceptable(password))
		return PASSWD_ERR_DENIED;
	/* Always one argon2id run, so the time taken does not tell whether
	 * the user exists. */
	match = crypto_pwhash_str_verify(real ? hash : pf->dummy_hash, password,
					 strlen(password)) == 0;
	sodium_memzero(hash, sizeof(hash));
	return real && match ? PASSWD_OK : PASSWD_ERR_DENIED;
}

bool passwd_hash_for(struct passwd_file *pf, const char *name, char hash[PASSWORD_HASH_LEN])
{
	bool real = name_valid(name) && passwd_lookup(pf, name, hash) == PASSWD_OK &&
		    hash_usable(hash);

	if (!real)
		memcpy(hash, pf->dummy_hash, PASSWORD_HASH_LEN);
	return real;
}

/* Write all lines to the file (temporary file, fsync, rename) and
 * remember the identity of what we wrote. */
static int file_write_lines(struct passwd_file *pf)
{
	size_t len = 0, off = 0;
	char *buf;
	int rc;

	for (size_t i = 0; i < pf->n_lines; i++)
		len += strlen(pf->lines[i].text) + 1;
	buf = malloc(len + 1);
	if (buf == NULL)
		return PASSWD_ERR_SYSTEM;
	for (size_t i = 0; i < pf->n_lines; i++) {
		size_t n = strlen(pf->lines[i].text);
		memcpy(buf + off, pf->lines[i].text, n);
		off += n;
		buf[off++] = '\n';
	}
	rc = file_write_atomic(pf->path, buf, len, 0600);
	free(buf);
	if (rc < 0) {
		pf->loaded = false;     /* unsure what is on disk: reread next time */
		return PASSWD_ERR_SYSTEM;
	}
	if (file_id_stat(pf->path, &pf->id) < 0)
		pf->loaded = false;
	return PASSWD_OK;
}

/* Build "name:hash:" followed by the fields that came after the old hash. */
static char *user_line(const char *name, const char *hash, const char *tail)
{
	return str_printf("%s:%s:%s", name, hash, tail ? tail : "");
}

static bool hash_settable(const char *hash)
{
	if (!hash_usable(hash))
		return false;
	for (const char *p = hash; *p; p++)
		if (*p == ':' || *p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

int passwd_set_hash(struct passwd_file *pf, const char *name, const char *hash)
{
	struct pw_line *l, nl = { 0 };
	char *text, *hcopy;
	int status;

	if (!name_valid(name))
		return PASSWD_ERR_NAME;
	if (!hash_settable(hash))
		return PASSWD_ERR_HASH;
	/* Reread first: an edit made since our last look must not be lost,
	 * and a file we cannot parse must not be overwritten. */
	status = passwd_reload(pf);
	if (status != PASSWD_OK)
		return status;
	l = find_user(pf, name);
	text = user_line(name, hash, l ? l->text + l->tail : NULL);
	hcopy = strdup(hash);
	if (text == NULL || hcopy == NULL) {
		free(text);
		free(hcopy);
		return PASSWD_ERR_SYSTEM;
	}
	if (l) {
		free(l->text);
		free(l->hash);
		l->text = text;
		l->hash = hcopy;
		l->tail = strlen(name) + 1 + strlen(hash) + 1;
	} else {
		struct pw_line *lines = realloc(pf->lines, (pf->n_lines + 1) * sizeof(*lines));
		nl = (struct pw_line){ .text = text, .name = strdup(name), .hash = hcopy,
				       .tail = strlen(text) };
		if (lines)
			pf->lines = lines;      /* grown; n_lines still right */
		if (lines == NULL || nl.name == NULL) {
			free(nl.text);
			free(nl.name);
			free(nl.hash);
			return PASSWD_ERR_SYSTEM;
		}
		pf->lines[pf->n_lines++] = nl;
	}
	return file_write_lines(pf);
}

int passwd_set(struct passwd_file *pf, const char *name, const char *password)
{
	char hash[PASSWORD_HASH_LEN];
	int status;

	if (!name_valid(name))
		return PASSWD_ERR_NAME;
	if (!password_acceptable(password))
		return PASSWD_ERR_PASSWORD;
	if (password_hash(password, hash) < 0)
		return PASSWD_ERR_SYSTEM;
	status = passwd_set_hash(pf, name, hash);
	sodium_memzero(hash, sizeof(hash));
	return status;
}

int passwd_remove(struct passwd_file *pf, const char *name)
{
	struct pw_line *l = NULL;
	int status = fresh_line(pf, name, &l);

	if (status != PASSWD_OK)
		return status;
	free(l->text);
	free(l->name);
	free(l->hash);
	memmove(l, l + 1, (size_t)(pf->lines + pf->n_lines - (l + 1)) * sizeof(*l));
	pf->n_lines--;
	return file_write_lines(pf);
}

int passwd_foreach(struct passwd_file *pf, void (*fn)(void *ctx, const char *name), void *ctx)
{
	int status = passwd_reload(pf);

	if (status != PASSWD_OK)
		return status;
	for (size_t i = 0; i < pf->n_lines; i++)
		if (pf->lines[i].name)
			fn(ctx, pf->lines[i].name);
	return PASSWD_OK;
}
