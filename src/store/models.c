/*
 * models — images, networks, keys, VMs and their NICs in the store.  Written once
 * against the engine interface (store_internal.h); portable SQL only.
 */
#include "store/store_internal.h"
#include "store/usage.h"

#include "common/ids.h"
#include "common/validate.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IMAGE_ID_DIGITS 8

static int64_t now_unix(void)
{
	return (int64_t)time(NULL);
}

/* A ref is an ID when it is exactly `digits` lowercase hex digits. */
bool ref_as_id(const char *ref, size_t digits, uint64_t *id)
{
	uint64_t v = 0;

	if (strlen(ref) != digits)
		return false;
	for (size_t i = 0; i < digits; i++) {
		char c = ref[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		v = (v << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	*id = v;
	return true;
}

/* Scope clause parameter: -1 (every owner) for admins and OWNER_ANY. */
struct sval scope_param(uint64_t scope)
{
	return scope & SCOPE_ALL_BIT ? SV_I(-1) : SV_I(scope);
}

#define SCOPE_SQL " AND (? = -1 OR x.owner = ?)"
/* Public images are readable by everyone. */
#define IMAGE_SCOPE_SQL " AND (? = -1 OR x.owner = ? OR x.visibility = 'public')"

/*
 * One resolver for every kind (store.h, References): a kind says how its
 * IDs read, what else a row must satisfy, whether public rows are in
 * everybody's scope, and how to fetch one row of it.
 */
struct kind {
	bool (*id_parse)(const char *ref, uint64_t *id);
	const char *table;          /* for counting public rows */
	const char *live;           /* more WHERE for visible rows, or "" */
	bool has_public;            /* images */
	int (*one)(struct store *st, const char *where, const struct sval *p, int n, void *out);
};

static int ref_get(struct store *st, const struct kind *k, const char *ref, uint64_t scope,
		   void *out)
{
	const char *slash = strchr(ref, '/');
	const char *vis = k->has_public ? IMAGE_SCOPE_SQL : SCOPE_SQL;
	struct sval sp = scope_param(scope);
	/* A member's scope is its caller; an admin's carries it. */
	uint64_t caller = scope & ~SCOPE_ALL_BIT;
	char where[256];
	uint64_t id;
	int rc;

	if (slash == NULL && k->id_parse(ref, &id)) {
		struct sval p[] = { SV_I(id), sp, sp };
		snprintf(where, sizeof(where), "x.id = ?%s%s", k->live, vis);
		rc = k->one(st, where, p, 3, out);
		/* Names never read as IDs (refused at creation): a miss is a miss. */
		return rc;
	}
	if (slash) {
		char owner[64];
		size_t len = (size_t)(slash - ref);
		if (len >= sizeof(owner))
			return STORE_NOTFOUND;
		memcpy(owner, ref, len);
		owner[len] = '\0';
		if (!name_valid(owner) || !name_valid(slash + 1))
			return STORE_NOTFOUND;
		const char *who = owner;
		struct sval p[] = { SV_S(who), SV_S(slash + 1), sp, sp };
		snprintf(where, sizeof(where), "u.name = ? AND x.name = ?%s%s", k->live, vis);
		return k->one(st, where, p, 4, out);
	}
	struct sval own[] = { SV_S(ref), SV_I(caller) };
	snprintf(where, sizeof(where), "x.name = ? AND x.owner = ?%s", k->live);
	rc = k->one(st, where, own, 2, out);
	if (rc != STORE_NOTFOUND || !k->has_public)
		return rc;
	/* Somebody else's public row: only when exactly one owner has one,
	 * so a second publisher cannot take the name over silently. */
	int64_t count = 0;
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s x WHERE x.name = ?"
		 " AND x.visibility = 'public'", k->table);
	rc = store_q(st, sql, &SV_S(ref), 1, store_row_int, &count);
	if (rc == STORE_OK && count > 1)
		return STORE_AMBIGUOUS;
	if (rc != STORE_OK || count == 0)
		return rc == STORE_OK ? STORE_NOTFOUND : rc;
	snprintf(where, sizeof(where), "x.name = ? AND x.visibility = 'public'%s", k->live);
	return k->one(st, where, own, 1, out);
}

/* ---- users -------------------------------------------------------------- */

int store_user_name(struct store *st, uint64_t id, char **name)
{
	*name = NULL;
	int rc = store_q(st, "SELECT name FROM users WHERE id = ?", &SV_I(id), 1, store_row_str, name);
	if (rc == STORE_OK && *name == NULL)
		return STORE_NOTFOUND;
	return rc;
}

/* ---- images ------------------------------------------------------------- */

void image_free(struct image *im)
{
	if (!im)
		return;
	free(im->name);
	free(im->owner_name);
	free(im->sha256);
	free(im->format);
	free(im->boot);
	free(im->cmdline);
	free(im->state);
	free(im->visibility);
	free(im->source);
	free(im->import_host);
	free(im->expect_sha256);
	free(im->error);
	memset(im, 0, sizeof(*im));
}

void images_free(struct image *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		image_free(&v[i]);
	free(v);
}

#define IMAGE_COLS "x.id, x.name, x.owner, u.name, x.sha256, x.format, x.boot, x.size," \
	" x.cmdline, x.has_initrd, x.state, x.created, x.visibility, x.source, x.expect_sha256," \
	" x.error, x.import_host FROM images x JOIN users u ON u.id = x.owner"

static void image_from_row(struct image *im, const struct sval *c)
{
	im->id = (uint64_t)c[0].i;
	im->name = sv_strdup(&c[1]);
	im->owner = (uint64_t)c[2].i;
	im->owner_name = sv_strdup(&c[3]);
	im->sha256 = sv_strdup(&c[4]);
	im->format = sv_strdup(&c[5]);
	im->boot = sv_strdup(&c[6]);
	im->size = c[7].i;
	im->cmdline = sv_strdup(&c[8]);
	im->has_initrd = c[9].i != 0;
	im->state = sv_strdup(&c[10]);
	im->created = c[11].i;
	im->visibility = sv_strdup(&c[12]);
	im->source = sv_strdup(&c[13]);
	im->expect_sha256 = sv_strdup(&c[14]);
	im->error = sv_strdup(&c[15]);
	im->import_host = sv_strdup(&c[16]);
}

int rows_add(void *arg, const struct sval *c, int ncols)
{
	struct rows *r = arg;
	(void)ncols;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		void *nv = realloc(r->v, cap * r->elem);
		if (nv == NULL)
			return 1;
		r->v = nv;
		r->cap = cap;
	}
	void *e = (char *)r->v + r->n * r->elem;
	memset(e, 0, r->elem);
	r->fill(e, c);
	r->n++;
	return 0;
}

static void fill_image(void *e, const struct sval *c) { image_from_row(e, c); }

int store_image_create(struct store *st, struct image *im)
{
	int64_t add[QUOTA_N] = { [QUOTA_IMAGES] = 1 };
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = quota_admit(st, im->owner, add);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "image", UINT32_MAX, &im->id);
	im->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(im->id), SV_S(im->name), SV_I(im->owner), SV_S(im->format),
			SV_S(im->boot), SV_S(im->cmdline), SV_I(im->has_initrd),
			SV_S(im->state ? im->state : "uploading"), SV_I(im->created),
			SV_S(im->visibility ? im->visibility : "private"), SV_S(im->source),
			SV_S(im->expect_sha256), SV_S(im->import_host) };
		rc = store_w(st, "INSERT INTO images (id, name, owner, format, boot, cmdline,"
			     " has_initrd, state, created, visibility, source, expect_sha256, import_host)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", p, 13);
	}
	return store_tx_end(st, rc);
}

static int image_one(struct store *st, const char *where, const struct sval *p, int n,
		     struct image *out)
{
	struct rows r = { .elem = sizeof(struct image), .fill = fill_image };
	char sql[1024];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " IMAGE_COLS " WHERE %s", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc == STORE_OK && r.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		*out = ((struct image *)r.v)[0];
	for (size_t i = rc == STORE_OK ? 1 : 0; i < r.n; i++)
		image_free(&((struct image *)r.v)[i]);
	free(r.v);
	return rc;
}

int store_image_get_id(struct store *st, uint64_t id, struct image *out)
{
	return image_one(st, "x.id = ?", &SV_I(id), 1, out);
}

static bool image_id_parse(const char *ref, uint64_t *id)
{
	return ref_as_id(ref, IMAGE_ID_DIGITS, id);
}

static int image_one_v(struct store *st, const char *where, const struct sval *p, int n, void *out)
{
	return image_one(st, where, p, n, out);
}

int store_image_get(struct store *st, const char *ref, uint64_t scope, struct image *out)
{
	static const struct kind k = { image_id_parse, "images", "", true, image_one_v };

	return ref_get(st, &k, ref, scope, out);
}

int store_image_list(struct store *st, uint64_t scope, struct image **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct image), .fill = fill_image };
	struct sval sp = scope_param(scope);
	struct sval p[] = { sp, sp };
	int rc = store_q(st, "SELECT " IMAGE_COLS " WHERE 1 = 1" IMAGE_SCOPE_SQL " ORDER BY x.id",
			 p, 2, rows_add, &r);
	if (rc != STORE_OK) {
		images_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_image_finalize(struct store *st, uint64_t id, const char *sha256,
			 const char *format, int64_t size)
{
	struct sval p[] = { SV_S(sha256), SV_S(format), SV_I(size), SV_I(id) };
	int64_t add[QUOTA_N] = { [QUOTA_IMAGE_BYTES] = size }, owner = -1, had = 0;
	struct sval q[] = { SV_I(id) };
	int rc = store_tx_begin(st);
	/* Bytes are known only now: the quota is checked as the image
	 * becomes usable, against what it adds to its current size. */
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT owner FROM images WHERE id = ?", q, 1, store_row_int, &owner);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT size FROM images WHERE id = ?", q, 1, store_row_int, &had);
	add[QUOTA_IMAGE_BYTES] -= had;
	if (rc == STORE_OK && owner >= 0)
		rc = quota_admit(st, (uint64_t)owner, add);
	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE images SET sha256 = ?, format = ?, size = ?, state = 'ready'"
			     " WHERE id = ?", p, 4);
	return store_tx_end(st, rc);
}

int store_image_fail(struct store *st, uint64_t id, const char *error)
{
	struct sval p[] = { SV_S(error), SV_I(id) };
	int rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE images SET state = 'error', error = ?"
			     " WHERE id = ? AND state = 'importing'", p, 2);
	return store_tx_end(st, rc);
}

int store_image_delete(struct store *st, uint64_t id)
{
	int64_t users = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM vms WHERE image = ?", &SV_I(id), 1,
			     store_row_int, &users);
	if (rc == STORE_OK && users > 0)
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM images WHERE id = ?", &SV_I(id), 1);
	return store_tx_end(st, rc);
}

int store_image_sha_refs(struct store *st, const char *sha256, uint64_t except_id, int *count)
{
	int64_t c = 0;
	struct sval p[] = { SV_S(sha256), SV_I(except_id) };
	int rc = store_q(st, "SELECT COUNT(*) FROM images WHERE sha256 = ? AND id <> ?", p, 2,
			 store_row_int, &c);
	*count = (int)c;
	return rc;
}

/* ---- networks ----------------------------------------------------------- */

void network_free(struct network *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->owner_name);
	free(n->ipv6);
	free(n->ipv4);
	memset(n, 0, sizeof(*n));
}

void networks_free(struct network *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		network_free(&v[i]);
	free(v);
}

#define NET_COLS "x.id, x.name, x.owner, u.name, x.ipv6, x.ipv4, x.created" \
	" FROM networks x JOIN users u ON u.id = x.owner"

static void fill_network(void *e, const struct sval *c)
{
	struct network *n = e;
	n->id = (uint64_t)c[0].i;
	n->name = sv_strdup(&c[1]);
	n->owner = (uint64_t)c[2].i;
	n->owner_name = sv_strdup(&c[3]);
	n->ipv6 = sv_strdup(&c[4]);
	n->ipv4 = sv_strdup(&c[5]);
	n->created = c[6].i;
}

int store_network_create(struct store *st, struct network *n)
{
	int64_t add[QUOTA_N] = { [QUOTA_NETWORKS] = 1 };
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = quota_admit(st, n->owner, add);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "network", NET_ID_MAX, &n->id);
	n->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(n->id), SV_S(n->name), SV_I(n->owner), SV_S(n->ipv6),
			SV_S(n->ipv4), SV_I(n->created) };
		rc = store_w(st, "INSERT INTO networks (id, name, owner, ipv6, ipv4, created)"
			     " VALUES (?, ?, ?, ?, ?, ?)", p, 6);
	}
	if (rc == STORE_OK && n->limit)
		rc = store_net_limit_write(st, n->id, n->limit);
	return store_tx_end(st, rc);
}

static int network_one(struct store *st, const char *where, const struct sval *p, int n,
		       struct network *out)
{
	struct rows r = { .elem = sizeof(struct network), .fill = fill_network };
	char sql[512];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " NET_COLS " WHERE %s", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc == STORE_OK && r.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		*out = ((struct network *)r.v)[0];
	for (size_t i = rc == STORE_OK ? 1 : 0; i < r.n; i++)
		network_free(&((struct network *)r.v)[i]);
	free(r.v);
	return rc;
}

static int network_one_v(struct store *st, const char *where, const struct sval *p, int n,
			 void *out)
{
	return network_one(st, where, p, n, out);
}

int store_network_get(struct store *st, const char *ref, uint64_t scope, struct network *out)
{
	static const struct kind k = { net_id_parse, "networks", "", false, network_one_v };

	return ref_get(st, &k, ref, scope, out);
}

int store_network_list(struct store *st, uint64_t scope, struct network **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct network), .fill = fill_network };
	struct sval sp = scope_param(scope);
	struct sval p[] = { sp, sp };
	int rc = store_q(st, "SELECT " NET_COLS " WHERE 1 = 1" SCOPE_SQL " ORDER BY x.id",
			 p, 2, rows_add, &r);
	if (rc != STORE_OK) {
		networks_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_network_delete(struct store *st, uint64_t id)
{
	int64_t users = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM nics WHERE network = ?", &SV_I(id), 1,
			     store_row_int, &users);
	if (rc == STORE_OK && users > 0)
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM networks WHERE id = ?", &SV_I(id), 1);
	return store_tx_end(st, rc);
}

/* ---- keys --------------------------------------------------------------- */

void key_free(struct key *k)
{
	if (!k)
		return;
	free(k->name);
	free(k->owner_name);
	free(k->type);
	free(k->pubkey);
	free(k->fingerprint);
	memset(k, 0, sizeof(*k));
}

void keys_free(struct key *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		key_free(&v[i]);
	free(v);
}

#define KEY_COLS "x.id, x.name, x.owner, u.name, x.type, x.pubkey, x.fingerprint, x.created" \
	" FROM keys x JOIN users u ON u.id = x.owner"

static void fill_key(void *e, const struct sval *c)
{
	struct key *k = e;
	k->id = (uint64_t)c[0].i;
	k->name = sv_strdup(&c[1]);
	k->owner = (uint64_t)c[2].i;
	k->owner_name = sv_strdup(&c[3]);
	k->type = sv_strdup(&c[4]);
	k->pubkey = sv_strdup(&c[5]);
	k->fingerprint = sv_strdup(&c[6]);
	k->created = c[7].i;
}

int store_key_create(struct store *st, struct key *k)
{
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = store_counter_next(st, "key", UINT32_MAX, &k->id);
	k->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(k->id), SV_S(k->name), SV_I(k->owner), SV_S(k->type),
			SV_S(k->pubkey), SV_S(k->fingerprint), SV_I(k->created) };
		rc = store_w(st, "INSERT INTO keys (id, name, owner, type, pubkey, fingerprint, created)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
	}
	return store_tx_end(st, rc);
}

static int key_one(struct store *st, const char *where, const struct sval *p, int n,
		   struct key *out)
{
	struct rows r = { .elem = sizeof(struct key), .fill = fill_key };
	char sql[512];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " KEY_COLS " WHERE %s", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc == STORE_OK && r.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		*out = ((struct key *)r.v)[0];
	for (size_t i = rc == STORE_OK ? 1 : 0; i < r.n; i++)
		key_free(&((struct key *)r.v)[i]);
	free(r.v);
	return rc;
}

static bool key_id_parse(const char *ref, uint64_t *id)
{
	return ref_as_id(ref, KEY_ID_DIGITS, id);
}

static int key_one_v(struct store *st, const char *where, const struct sval *p, int n, void *out)
{
	return key_one(st, where, p, n, out);
}

int store_key_get(struct store *st, const char *ref, uint64_t scope, struct key *out)
{
	static const struct kind k = { key_id_parse, "keys", "", false, key_one_v };

	return ref_get(st, &k, ref, scope, out);
}

int store_key_list(struct store *st, uint64_t scope, struct key **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct key), .fill = fill_key };
	struct sval sp = scope_param(scope);
	struct sval p[] = { sp, sp };
	int rc = store_q(st, "SELECT " KEY_COLS " WHERE 1 = 1" SCOPE_SQL " ORDER BY x.id",
			 p, 2, rows_add, &r);
	if (rc != STORE_OK) {
		keys_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_key_delete(struct store *st, uint64_t id)
{
	int64_t users = 0;
	int rc = store_tx_begin(st);

	/* A deleted VM is gone for its owner even while its host still cleans
	 * up: it does not hold the key, and its link goes with the key. */
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM vm_keys vk JOIN vms v ON v.id = vk.vm"
			     " WHERE vk.key = ? AND v.desired <> 'deleted'", &SV_I(id), 1,
			     store_row_int, &users);
	if (rc == STORE_OK && users > 0)
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM vm_keys WHERE key = ?", &SV_I(id), 1);
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM keys WHERE id = ?", &SV_I(id), 1);
	return store_tx_end(st, rc);
}

/* ---- VMs ---------------------------------------------------------------- */

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	free(vm->name);
	free(vm->owner_name);
	free(vm->image_name);
	free(vm->desired);
	free(vm->state);
	free(vm->host);
	free(vm->error);
	for (size_t i = 0; i < vm->n_nics; i++) {
		free(vm->nics[i].network_name);
		free(vm->nics[i].network_ipv6);
		free(vm->nics[i].ipv4);
		/* routing (prefixes.c) */
		for (size_t j = 0; j < vm->nics[i].n_prefixes; j++)
			free(vm->nics[i].prefixes[j]);
		free(vm->nics[i].prefixes);
		free(vm->nics[i].public_ipv4);
	}
	free(vm->nics);
	for (size_t i = 0; i < vm->n_keys; i++) {
		free(vm->keys[i].name);
		free(vm->keys[i].fingerprint);
		free(vm->keys[i].pubkey);
	}
	free(vm->keys);
	free(vm->user_data);
	free(vm->disks);
	memset(vm, 0, sizeof(*vm));
}

void vms_free(struct vm *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vm_free(&v[i]);
	free(v);
}

#define VM_COLS "x.id, x.name, x.owner, u.name, x.image, i.name, x.cpus, x.memory_mib," \
	" x.desired, x.state, x.host, x.error, x.created, x.user_data_size, x.config_drive," \
	" x.disk_size, x.ephemeral, x.metadata_tokens, x.force_stop, x.run_nic_slots FROM vms x" \
	" JOIN users u ON u.id = x.owner JOIN images i ON i.id = x.image"

static void fill_vm(void *e, const struct sval *c)
{
	struct vm *vm = e;
	vm->id = (uint64_t)c[0].i;
	vm->name = sv_strdup(&c[1]);
	vm->owner = (uint64_t)c[2].i;
	vm->owner_name = sv_strdup(&c[3]);
	vm->image = (uint64_t)c[4].i;
	vm->image_name = sv_strdup(&c[5]);
	vm->cpus = (int)c[6].i;
	vm->memory_mib = (int)c[7].i;
	vm->desired = sv_strdup(&c[8]);
	vm->state = sv_strdup(&c[9]);
	vm->host = sv_strdup(&c[10]);
	vm->error = sv_strdup(&c[11]);
	vm->created = c[12].i;
	vm->user_data_len = (size_t)c[13].i;
	vm->config_drive = c[14].i != 0;
	vm->disk_size = c[15].i;
	vm->ephemeral = c[16].i != 0;
	/* Anything but 'optional' reads as the stricter setting. */
	vm->metadata_tokens_required = c[17].t != SV_TEXT || strcmp(c[17].s, "optional") != 0;
	vm->force_stop = c[18].i != 0;
	vm->run_nic_slots = c[19].i != 0;
}

/* One more zeroed element at the end of *v; NULL when out of memory. */
static void *grow(void *v, size_t *n, size_t elem, void **out)
{
	char *nv = realloc(v, (*n + 1) * elem);

	if (nv == NULL)
		return NULL;
	*out = nv;
	memset(nv + *n * elem, 0, elem);
	return nv + (*n)++ * elem;
}

static bool add_nic(struct vm *vm, const struct sval *c)
{
	struct nic *n = grow(vm->nics, &vm->n_nics, sizeof(*n), (void **)&vm->nics);

	if (n == NULL)
		return false;
	n->id = (uint64_t)c[0].i;
	n->network = (uint64_t)c[1].i;
	n->network_name = sv_strdup(&c[2]);
	n->network_ipv6 = sv_strdup(&c[3]);
	n->ipv4 = sv_strdup(&c[4]);
	n->pci_slot = (int)c[5].i;
	return true;
}

static bool add_key(struct vm *vm, const struct sval *c)
{
	struct vm_key *k = grow(vm->keys, &vm->n_keys, sizeof(*k), (void **)&vm->keys);

	if (k == NULL)
		return false;
	k->id = (uint64_t)c[0].i;
	k->name = sv_strdup(&c[1]);
	k->fingerprint = sv_strdup(&c[2]);
	k->pubkey = sv_strdup(&c[3]);
	return true;
}

static bool add_disk(struct vm *vm, const struct sval *c)
{
	struct vm_disk *d = grow(vm->disks, &vm->n_disks, sizeof(*d), (void **)&vm->disks);

	if (d == NULL)
		return false;
	d->size = c[0].i;
	return true;
}

/* User data is stored as base64 text, so arbitrary bytes survive either
 * engine; a value that does not decode (never written by us) reads as
 * none. */
static bool add_user_data(struct vm *vm, const struct sval *c)
{
	size_t len = c[0].t == SV_TEXT ? strlen(c[0].s) : 0, max = len / 4 * 3 + 1, out = 0;

	vm->user_data_len = 0;
	if (len == 0 || (vm->user_data = malloc(max)) == NULL)
		return len == 0;
	if (sodium_base642bin(vm->user_data, max, c[0].s, len, NULL, &out, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(vm->user_data);
		vm->user_data = NULL;
		out = 0;
	}
	vm->user_data_len = out;
	return true;
}

/* Rows that belong to the VMs of a query, each led by its VM's ID and
 * sorted by it like the VMs: one merge walk hands each to its VM. */
struct children {
	struct vm *vms;
	size_t n, at;
	bool (*add)(struct vm *vm, const struct sval *c);
	bool failed;              /* out of memory: the statement was stopped */
};

static int child_row(void *arg, const struct sval *c, int ncols)
{
	struct children *k = arg;
	uint64_t vm = (uint64_t)c[0].i;

	(void)ncols;
	while (k->at < k->n && k->vms[k->at].id < vm)
		k->at++;
	if (k->at < k->n && k->vms[k->at].id == vm && !k->add(&k->vms[k->at], c + 1))
		k->failed = true;
	return k->failed;
}

/* One statement for one kind of child of every VM found (not one per VM:
 * a list of 10,000 VMs is four statements).  sql selects the rows whose
 * VM ID lies between two parameters — the first and last VM found, an
 * index range — and the merge walk skips those of VMs not found. */
static int vm_children(struct store *st, const char *sql, struct vm *vms, size_t count,
		       bool (*add)(struct vm *, const struct sval *))
{
	struct children k = { .vms = vms, .n = count, .add = add };
	struct sval p[2];
	int rc;

	if (count == 0)
		return STORE_OK;
	p[0] = SV_I(vms[0].id);
	p[1] = SV_I(vms[count - 1].id);
	rc = store_q(st, sql, p, 2, child_row, &k);
	return rc == STORE_OK && k.failed ? STORE_ERR : rc;
}

/*
 * VMs with their NICs, keys and disks.  A list (full = false) carries
 * what a list shows: no user data (only its size) and no key material
 * (pubkey NULL); a VM got one by one (full) has both.
 */
static int vm_query(struct store *st, const char *where, const struct sval *p, int n, bool full,
		    struct vm **out, size_t *count)
{
	struct rows r = { .elem = sizeof(struct vm), .fill = fill_vm };
	char sql[1024];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " VM_COLS " WHERE %s ORDER BY x.id", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc == STORE_OK)
		rc = vm_children(st, "SELECT n.vm, n.id, n.network, w.name, w.ipv6, n.ipv4, n.pci_slot"
				 " FROM nics n"
				 " JOIN networks w ON w.id = n.network WHERE n.vm BETWEEN ? AND ?"
				 " ORDER BY n.vm, n.idx", r.v, r.n, add_nic);
	if (rc == STORE_OK)
		rc = vm_children(st, full ? "SELECT vk.vm, k.id, k.name, k.fingerprint, k.pubkey"
				 " FROM vm_keys vk JOIN keys k ON k.id = vk.key"
				 " WHERE vk.vm BETWEEN ? AND ? ORDER BY vk.vm, k.id"
				 : "SELECT vk.vm, k.id, k.name, k.fingerprint, NULL"
				 " FROM vm_keys vk JOIN keys k ON k.id = vk.key"
				 " WHERE vk.vm BETWEEN ? AND ? ORDER BY vk.vm, k.id", r.v, r.n, add_key);
	if (rc == STORE_OK)
		rc = vm_children(st, "SELECT vm, size FROM vm_disks WHERE vm BETWEEN ? AND ?"
				 " ORDER BY vm, idx", r.v, r.n, add_disk);
	if (rc == STORE_OK && full)
		rc = vm_children(st, "SELECT vm, data FROM vm_user_data WHERE vm BETWEEN ? AND ?"
				 " ORDER BY vm", r.v, r.n, add_user_data);
	if (rc == STORE_OK)         /* routing (prefixes.c): prefixes and public IPv4 */
		rc = store_vm_routing_load(st, r.v, r.n);
	if (rc != STORE_OK) {
		vms_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*count = r.n;
	return STORE_OK;
}

static int vm_one(struct store *st, const char *where, const struct sval *p, int n,
		  struct vm *out)
{
	struct vm *v = NULL;
	size_t count = 0;
	int rc = vm_query(st, where, p, n, true, &v, &count);

	if (rc == STORE_OK && count == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK) {
		*out = v[0];
		memset(&v[0], 0, sizeof(v[0]));
	}
	vms_free(v, count);
	return rc;
}

int store_vm_get_id(struct store *st, uint64_t id, struct vm *out)
{
	return vm_one(st, "x.id = ?", &SV_I(id), 1, out);
}

static int vm_one_v(struct store *st, const char *where, const struct sval *p, int n, void *out)
{
	return vm_one(st, where, p, n, out);
}

int store_vm_get(struct store *st, const char *ref, uint64_t scope, struct vm *out)
{
	static const struct kind k = { vm_id_parse, "vms", " AND x.desired <> 'deleted'", false,
				       vm_one_v };

	return ref_get(st, &k, ref, scope, out);
}

int store_vm_list(struct store *st, uint64_t scope, bool include_deleted,
		  struct vm **out, size_t *n)
{
	struct sval sp = scope_param(scope);
	struct sval p[] = { SV_I(include_deleted), sp, sp };
	return vm_query(st, "(? = 1 OR x.desired <> 'deleted')" SCOPE_SQL, p, 3, false, out, n);
}

/* The IPv4 addresses of a network's NICs, as host-order numbers. */
struct addrs {
	uint32_t *v;
	size_t n;
	bool failed;
};

static int addr_row(void *arg, const struct sval *c, int ncols)
{
	struct addrs *a = arg;
	struct in_addr in;
	void *slot;

	(void)ncols;
	if (c[0].t != SV_TEXT || inet_pton(AF_INET, c[0].s, &in) != 1)
		return 0;
	if ((slot = grow(a->v, &a->n, sizeof(*a->v), (void **)&a->v)) == NULL) {
		a->failed = true;
		return 1;
	}
	*(uint32_t *)slot = ntohl(in.s_addr);
	return 0;
}

static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The lowest free IPv4 host address of a network (.1 is the gateway):
 * one sorted walk over the addresses in use, not a scan per candidate. */
static int ipv4_allocate(struct store *st, const char *cidr, uint64_t network, char **out)
{
	struct in_addr net;
	unsigned len;
	struct addrs used = { 0 };
	uint32_t base, size, host = 2;
	int rc;

	*out = NULL;
	if (cidr == NULL)
		return STORE_OK;
	if (!ipv4_cidr_parse(cidr, &net, &len))
		return STORE_ERR;
	rc = store_q(st, "SELECT ipv4 FROM nics WHERE network = ? AND ipv4 IS NOT NULL",
		     &SV_I(network), 1, addr_row, &used);
	if (rc == STORE_OK && used.failed)
		rc = STORE_ERR;
	base = ntohl(net.s_addr);
	size = UINT32_C(1) << (32 - len);
	sort_array(used.v, used.n, sizeof(*used.v), u32_cmp);
	for (size_t i = 0; i < used.n && used.v[i] <= base + host; i++)
		if (used.v[i] == base + host)
			host++;
	if (rc == STORE_OK && host < size - 1) {
		struct in_addr a = { .s_addr = htonl(base + host) };
		char buf[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		if ((*out = strdup(buf)) == NULL)
			rc = STORE_ERR;
	} else if (rc == STORE_OK) {
		rc = STORE_FULL;
	}
	free(used.v);
	return rc;
}

static int image_root_fill(void *arg, const struct sval *c, int n)
{
	/* A disk image's overlay is at least the image; a kernel image has
	 * no root disk unless one is sized. */
	if (c[0].t == SV_TEXT && strcmp(c[0].s, "disk") == 0)
		*(int64_t *)arg = c[1].i;
	return 1;
}

/* The quotas a new VM counts against: itself, its vCPUs, memory and disks
 * as sized. */
int vm_admit(struct store *st, const struct vm *vm)
{
	int64_t add[QUOTA_N] = { [QUOTA_VMS] = 1, [QUOTA_VCPUS] = vm->cpus,
				 [QUOTA_MEMORY_MIB] = vm->memory_mib };
	int64_t root = 0;
	int rc = STORE_OK;

	if (vm->disk_size > 0)
		root = vm->disk_size;
	else
		rc = store_q(st, "SELECT boot, size FROM images WHERE id = ?", &SV_I(vm->image), 1,
			     image_root_fill, &root);
	add[QUOTA_DISK_BYTES] = root;
	for (size_t i = 0; i < vm->n_disks; i++)
		add[QUOTA_DISK_BYTES] += vm->disks[i].size;
	return rc == STORE_OK ? quota_admit(st, vm->owner, add) : rc;
}

int store_vm_create(struct store *st, struct vm *vm, const uint64_t *networks, size_t n_networks)
{
	char *ud = NULL;

	if (vm->user_data) {
		size_t size = sodium_base64_ENCODED_LEN(vm->user_data_len, sodium_base64_VARIANT_ORIGINAL);
		if ((ud = malloc(size)) == NULL)
			return STORE_ERR;
		sodium_bin2base64(ud, size, vm->user_data, vm->user_data_len,
				  sodium_base64_VARIANT_ORIGINAL);
	}
	int rc = store_tx_begin(st);
	if (rc != STORE_OK) {
		free(ud);
		return rc;
	}
	rc = vm_admit(st, vm);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "vm", VM_ID_MAX, &vm->id);
	vm->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(vm->id), SV_S(vm->name), SV_I(vm->owner), SV_I(vm->image),
			SV_I(vm->cpus), SV_I(vm->memory_mib), SV_S(vm->desired), SV_S(vm->state),
			SV_S(vm->host), SV_I(vm->created), SV_I(ud ? vm->user_data_len : 0),
			SV_I(vm->config_drive ? 1 : 0), SV_I(vm->disk_size), SV_I(vm->ephemeral ? 1 : 0),
			SV_S(vm->metadata_tokens_required ? "required" : "optional") };
		rc = store_w(st, "INSERT INTO vms (id, name, owner, image, cpus, memory_mib, desired,"
			     " state, host, created, user_data_size, config_drive, disk_size, ephemeral,"
			     " metadata_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     p, 15);
		store_event_vm(st, vm->id, "created");
	}
	/* In a table of its own: lists never read it (issue 12 §6). */
	if (rc == STORE_OK && ud) {
		struct sval p[] = { SV_I(vm->id), SV_S(ud) };
		rc = store_w(st, "INSERT INTO vm_user_data (vm, data) VALUES (?, ?)", p, 2);
	}
	if (rc == STORE_OK && strcmp(vm->desired, "deleted") != 0)
		rc = host_load_add(st, vm->host, 1, vm->cpus, vm->memory_mib);
	free(ud);
	for (size_t i = 0; rc == STORE_OK && i < vm->n_disks; i++) {
		struct sval p[] = { SV_I(vm->id), SV_I(i), SV_I(vm->disks[i].size) };
		rc = store_w(st, "INSERT INTO vm_disks (vm, idx, size) VALUES (?, ?, ?)", p, 3);
	}
	for (size_t i = 0; rc == STORE_OK && i < vm->n_keys; i++) {
		struct sval p[] = { SV_I(vm->id), SV_I(vm->keys[i].id) };
		rc = store_w(st, "INSERT INTO vm_keys (vm, key) VALUES (?, ?)", p, 2);
	}
	for (size_t i = 0; rc == STORE_OK && i < n_networks; i++) {
		struct network net = { 0 };
		uint64_t nic_id;
		char *ipv4 = NULL;
		rc = network_one(st, "x.id = ?", &SV_I(networks[i]), 1, &net);
		if (rc == STORE_OK)
			rc = store_counter_next(st, "nic", NIC_ID_MAX, &nic_id);
		if (rc == STORE_OK)
			rc = ipv4_allocate(st, net.ipv4, net.id, &ipv4);
		if (rc == STORE_OK && i >= NIC_PCI_SLOTS)
			rc = STORE_FULL;
		if (rc == STORE_OK) {
			struct sval p[] = { SV_I(nic_id), SV_I(vm->id), SV_I(net.id), SV_I(i), SV_S(ipv4),
					    SV_I(NIC_PCI_SLOT_FIRST + i) };
			rc = store_w(st, "INSERT INTO nics (id, vm, network, idx, ipv4, pci_slot)"
				     " VALUES (?, ?, ?, ?, ?, ?)", p, 6);
		}
		if (rc == STORE_OK && vm->nic_limits)
			rc = store_nic_limit_write(st, nic_id, &vm->nic_limits[i]);
		free(ipv4);
		network_free(&net);
	}
	return store_tx_end(st, rc);
}

int store_vm_set_desired(struct store *st, uint64_t id, const char *desired)
{
	struct sval p[] = { SV_S(desired), SV_I(id) };
	int rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = host_load_vm(st, id, desired);
	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE vms SET desired = ?, force_stop = 0, error = NULL WHERE id = ?",
			     p, 2);
	store_event_vm(st, id, strcmp(desired, "deleted") == 0 ? "deleted" : "updated");
	return store_tx_end(st, rc);
}

int store_vm_stop(struct store *st, uint64_t id, bool force)
{
	struct sval p[] = { SV_I(force), SV_I(id) };
	int rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = host_load_vm(st, id, "stopped");
	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE vms SET desired = 'stopped', force_stop = ?, error = NULL"
			     " WHERE id = ?", p, 2);
	store_event_vm(st, id, "updated");
	return store_tx_end(st, rc);
}

int store_vm_set_metadata_tokens(struct store *st, uint64_t id, bool required)
{
	struct sval p[] = { SV_S(required ? "required" : "optional"), SV_I(id) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE vms SET metadata_tokens = ? WHERE id = ?", p, 2);
	store_event_vm(st, id, "updated");
	return store_tx_end(st, rc);
}

int store_vm_set_state(struct store *st, uint64_t id, const char *state, const char *error)
{
	struct sval p[] = { SV_S(state), SV_S(error), SV_I(id) };
	int rc = store_tx_begin(st);

	/* Observations of the host are not changes of intent: no hook (but
	 * an event for the API's streams). */
	if (rc == STORE_OK)
		rc = store_q(st, "UPDATE vms SET state = ?, error = ? WHERE id = ?", p, 3, NULL, NULL);
	store_event_vm(st, id, "updated");
	return store_tx_end(st, rc);
}

int store_vm_purge(struct store *st, uint64_t id)
{
	int rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = host_load_vm(st, id, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM nics WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM rules WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vm_keys WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vm_disks WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM snapshots WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vm_user_data WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vms WHERE id = ?", &SV_I(id), 1, NULL, NULL);
	return store_tx_end(st, rc);
}

/* ---- NICs --------------------------------------------------------------- */

/* One row's slot as a bit of a mask of the slots in use. */
static int slot_used(void *arg, const struct sval *c, int n)
{
	int64_t k = n > 0 && c[0].t == SV_INT ? c[0].i - NIC_PCI_SLOT_FIRST : -1;

	if (k >= 0 && k < NIC_PCI_SLOTS)
		*(uint32_t *)arg |= UINT32_C(1) << k;
	return 0;
}

/* The lowest slot no NIC of the VM has (the one a removed NIC left, so
 * the range never runs out below NIC_PCI_SLOTS NICs); STORE_FULL when
 * every slot is taken. */
static int pci_slot_free(struct store *st, uint64_t vm_id, int *slot)
{
	uint32_t used = 0;
	int rc = store_q(st, "SELECT pci_slot FROM nics WHERE vm = ?", &SV_I(vm_id), 1, slot_used,
			 &used);

	for (int k = 0; rc == STORE_OK && k < NIC_PCI_SLOTS; k++)
		if (!(used & UINT32_C(1) << k)) {
			*slot = NIC_PCI_SLOT_FIRST + k;
			return STORE_OK;
		}
	return rc == STORE_OK ? STORE_FULL : rc;
}

int store_nic_add(struct store *st, uint64_t vm_id, uint64_t network, const struct nic_limit *limit,
		  uint64_t *nic_id)
{
	struct network net = { 0 };
	int64_t idx = -1;
	int slot = 0;
	char *ipv4 = NULL;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = network_one(st, "x.id = ?", &SV_I(network), 1, &net);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COALESCE(MAX(idx), -1) FROM nics WHERE vm = ?", &SV_I(vm_id), 1,
			     store_row_int, &idx);
	if (rc == STORE_OK)
		rc = pci_slot_free(st, vm_id, &slot);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "nic", NIC_ID_MAX, nic_id);
	if (rc == STORE_OK)
		rc = ipv4_allocate(st, net.ipv4, net.id, &ipv4);
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(*nic_id), SV_I(vm_id), SV_I(net.id), SV_I(idx + 1), SV_S(ipv4),
				    SV_I(slot) };
		rc = store_w(st, "INSERT INTO nics (id, vm, network, idx, ipv4, pci_slot)"
			     " VALUES (?, ?, ?, ?, ?, ?)", p, 6);
	}
	if (rc == STORE_OK && limit)
		rc = store_nic_limit_write(st, *nic_id, limit);
	store_event_vm(st, vm_id, "updated");
	free(ipv4);
	network_free(&net);
	return store_tx_end(st, rc);
}

int store_nic_remove(struct store *st, uint64_t vm_id, uint64_t nic_id)
{
	int64_t count = 0;
	struct sval p[] = { SV_I(nic_id), SV_I(vm_id) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM nics WHERE id = ? AND vm = ?", p, 2,
			     store_row_int, &count);
	if (rc == STORE_OK && count == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM nics WHERE id = ? AND vm = ?", p, 2);
	store_event_vm(st, vm_id, "updated");
	return store_tx_end(st, rc);
}

/* ---- rules -------------------------------------------------------------- */

void rules_free(struct rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].proto);
		free(v[i].source);
	}
	free(v);
}

static void fill_rule(void *e, const struct sval *c)
{
	struct rule *r = e;
	r->id = (uint64_t)c[0].i;
	r->vm = (uint64_t)c[1].i;
	r->proto = sv_strdup(&c[2]);
	r->port_lo = (int)c[3].i;
	r->port_hi = (int)c[4].i;
	r->source = sv_strdup(&c[5]);
	r->created = c[6].i;
}

int store_rule_add(struct store *st, struct rule *r)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_counter_next(st, "rule", UINT32_MAX, &r->id);
	r->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(r->id), SV_I(r->vm), SV_S(r->proto), SV_I(r->port_lo),
			SV_I(r->port_hi), SV_S(r->source), SV_I(r->created) };
		rc = store_w(st, "INSERT INTO rules (id, vm, proto, port_lo, port_hi, source, created)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
	}
	return store_tx_end(st, rc);
}

int store_rule_list(struct store *st, uint64_t vm_id, struct rule **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct rule), .fill = fill_rule };
	struct sval p[] = { SV_I(vm_id), SV_I(vm_id) };
	int rc = store_q(st, "SELECT id, vm, proto, port_lo, port_hi, source, created FROM rules"
			 " WHERE (? = 0 OR vm = ?) ORDER BY vm, id", p, 2, rows_add, &r);
	if (rc != STORE_OK) {
		rules_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_rule_delete(struct store *st, uint64_t vm_id, uint64_t rule_id)
{
	int64_t count = 0;
	struct sval p[] = { SV_I(rule_id), SV_I(vm_id) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM rules WHERE id = ? AND vm = ?", p, 2,
			     store_row_int, &count);
	if (rc == STORE_OK && count == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		rc = store_w(st, "DELETE FROM rules WHERE id = ? AND vm = ?", p, 2);
	return store_tx_end(st, rc);
}

int store_vm_by_nic(struct store *st, uint64_t nic_id, struct vm *out)
{
	int64_t vm_id = -1;
	int rc = store_q(st, "SELECT vm FROM nics WHERE id = ?", &SV_I(nic_id), 1,
			 store_row_int, &vm_id);

	if (rc != STORE_OK)
		return rc;
	if (vm_id < 0)
		return STORE_NOTFOUND;
	return store_vm_get_id(st, (uint64_t)vm_id, out);
}
