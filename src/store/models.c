/*
 * models — images, networks, keys, VMs and their NICs in the store.  Written once
 * against the engine interface (store_internal.h); portable SQL only.
 */
#include "store/store_internal.h"
#include "store/usage.h"

#include "common/ids.h"
#include "common/validate.h"

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

/* Scope clause parameter: OWNER_ANY matches every owner. */
struct sval scope_param(uint64_t scope)
{
	return scope == OWNER_ANY ? SV_I(-1) : SV_I(scope);
}

#define SCOPE_SQL " AND (? = -1 OR x.owner = ?)"
/* Public images are readable by everyone; a name resolves to the caller's
 * own image before a public one of somebody else. */
#define IMAGE_SCOPE_SQL " AND (? = -1 OR x.owner = ? OR x.visibility = 'public')"

/* ---- users -------------------------------------------------------------- */

static int row_str(void *arg, const struct sval *c, int n)
{
	if (n > 0)
		*(char **)arg = sv_strdup(&c[0]);
	return 1;
}

int store_user_name(struct store *st, uint64_t id, char **name)
{
	*name = NULL;
	int rc = store_q(st, "SELECT name FROM users WHERE id = ?", &SV_I(id), 1, row_str, name);
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
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
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

int store_image_get(struct store *st, const char *ref, uint64_t scope, struct image *out)
{
	uint64_t id;
	struct sval sp = scope_param(scope);

	if (ref_as_id(ref, IMAGE_ID_DIGITS, &id)) {
		struct sval p[] = { SV_I(id), sp, sp };
		int rc = image_one(st, "x.id = ?" IMAGE_SCOPE_SQL, p, 3, out);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	struct sval p[] = { SV_S(ref), sp, sp, sp };
	return image_one(st, "x.name = ?" IMAGE_SCOPE_SQL
			 " ORDER BY CASE WHEN x.owner = ? THEN 0 ELSE 1 END, x.owner LIMIT 1", p, 4, out);
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
	int rc = store_tx_begin(st);
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
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
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

int store_network_get(struct store *st, const char *ref, uint64_t scope, struct network *out)
{
	uint64_t id;
	struct sval sp = scope_param(scope);

	if (net_id_parse(ref, &id)) {
		struct sval p[] = { SV_I(id), sp, sp };
		int rc = network_one(st, "x.id = ?" SCOPE_SQL, p, 3, out);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	struct sval p[] = { SV_S(ref), sp, sp };
	return network_one(st, "x.name = ?" SCOPE_SQL " ORDER BY x.owner LIMIT 1", p, 3, out);
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

int store_key_get(struct store *st, const char *ref, uint64_t scope, struct key *out)
{
	uint64_t id;
	struct sval sp = scope_param(scope);

	if (ref_as_id(ref, KEY_ID_DIGITS, &id)) {
		struct sval p[] = { SV_I(id), sp, sp };
		int rc = key_one(st, "x.id = ?" SCOPE_SQL, p, 3, out);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	struct sval p[] = { SV_S(ref), sp, sp };
	return key_one(st, "x.name = ?" SCOPE_SQL " ORDER BY x.owner LIMIT 1", p, 3, out);
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
	" x.desired, x.state, x.host, x.error, x.created, x.user_data, x.config_drive," \
	" x.disk_size, x.ephemeral, x.metadata_tokens FROM vms x" \
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
	/* A value that does not decode (never written by us) reads as none. */
	if (c[13].t == SV_TEXT && c[13].s) {
		size_t len = strlen(c[13].s), max = len / 4 * 3 + 1, out = 0;
		vm->user_data = malloc(max);
		if (vm->user_data && sodium_base642bin(vm->user_data, max, c[13].s, len, NULL, &out,
						       NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
			free(vm->user_data);
			vm->user_data = NULL;
		}
		vm->user_data_len = vm->user_data ? out : 0;
	}
	vm->config_drive = c[14].i != 0;
	vm->disk_size = c[15].i;
	vm->ephemeral = c[16].i != 0;
	/* Anything but 'optional' reads as the stricter setting. */
	vm->metadata_tokens_required = c[17].t != SV_TEXT || strcmp(c[17].s, "optional") != 0;
}

static void fill_vm_key(void *e, const struct sval *c)
{
	struct vm_key *k = e;
	k->id = (uint64_t)c[0].i;
	k->name = sv_strdup(&c[1]);
	k->fingerprint = sv_strdup(&c[2]);
	k->pubkey = sv_strdup(&c[3]);
}

static void fill_nic(void *e, const struct sval *c)
{
	struct nic *n = e;
	n->id = (uint64_t)c[0].i;
	n->network = (uint64_t)c[1].i;
	n->network_name = sv_strdup(&c[2]);
	n->network_ipv6 = sv_strdup(&c[3]);
	n->ipv4 = sv_strdup(&c[4]);
}

static int vm_load_nics(struct store *st, struct vm *vm)
{
	struct rows r = { .elem = sizeof(struct nic), .fill = fill_nic };
	int rc = store_q(st, "SELECT n.id, n.network, w.name, w.ipv6, n.ipv4 FROM nics n"
			 " JOIN networks w ON w.id = n.network WHERE n.vm = ? ORDER BY n.idx",
			 &SV_I(vm->id), 1, rows_add, &r);
	vm->nics = r.v;
	vm->n_nics = r.n;
	return rc;
}

static int vm_load_keys(struct store *st, struct vm *vm)
{
	struct rows r = { .elem = sizeof(struct vm_key), .fill = fill_vm_key };
	int rc = store_q(st, "SELECT k.id, k.name, k.fingerprint, k.pubkey FROM vm_keys vk"
			 " JOIN keys k ON k.id = vk.key WHERE vk.vm = ? ORDER BY k.id",
			 &SV_I(vm->id), 1, rows_add, &r);
	vm->keys = r.v;
	vm->n_keys = r.n;
	return rc;
}

static void fill_vm_disk(void *e, const struct sval *c)
{
	((struct vm_disk *)e)->size = c[0].i;
}

static int vm_load_disks(struct store *st, struct vm *vm)
{
	struct rows r = { .elem = sizeof(struct vm_disk), .fill = fill_vm_disk };
	int rc = store_q(st, "SELECT size FROM vm_disks WHERE vm = ? ORDER BY idx",
			 &SV_I(vm->id), 1, rows_add, &r);
	vm->disks = r.v;
	vm->n_disks = r.n;
	return rc;
}

static int vm_query(struct store *st, const char *where, const struct sval *p, int n,
		    struct vm **out, size_t *count)
{
	struct rows r = { .elem = sizeof(struct vm), .fill = fill_vm };
	char sql[768];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " VM_COLS " WHERE %s", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	for (size_t i = 0; rc == STORE_OK && i < r.n; i++)
		rc = vm_load_nics(st, &((struct vm *)r.v)[i]);
	for (size_t i = 0; rc == STORE_OK && i < r.n; i++)
		rc = vm_load_keys(st, &((struct vm *)r.v)[i]);
	for (size_t i = 0; rc == STORE_OK && i < r.n; i++)
		rc = vm_load_disks(st, &((struct vm *)r.v)[i]);
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
	int rc = vm_query(st, where, p, n, &v, &count);

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

int store_vm_get(struct store *st, const char *ref, uint64_t scope, struct vm *out)
{
	uint64_t id;
	struct sval sp = scope_param(scope);

	if (vm_id_parse(ref, &id)) {
		struct sval p[] = { SV_I(id), sp, sp };
		int rc = vm_one(st, "x.id = ? AND x.desired <> 'deleted'" SCOPE_SQL, p, 3, out);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	struct sval p[] = { SV_S(ref), sp, sp };
	return vm_one(st, "x.name = ? AND x.desired <> 'deleted'" SCOPE_SQL
		      " ORDER BY x.owner LIMIT 1", p, 3, out);
}

int store_vm_list(struct store *st, uint64_t scope, bool include_deleted,
		  struct vm **out, size_t *n)
{
	struct sval sp = scope_param(scope);
	struct sval p[] = { SV_I(include_deleted), sp, sp };
	return vm_query(st, "(? = 1 OR x.desired <> 'deleted')" SCOPE_SQL " ORDER BY x.id",
			p, 3, out, n);
}

/* The lowest free IPv4 host address of a network: .1 is the gateway. */
static int ipv4_allocate(struct store *st, const char *cidr, uint64_t network, char **out)
{
	struct in_addr net;
	unsigned len;
	struct rows r = { .elem = sizeof(struct nic), .fill = fill_nic };
	uint32_t base, size;
	int rc;

	*out = NULL;
	if (cidr == NULL)
		return STORE_OK;
	if (!ipv4_cidr_parse(cidr, &net, &len))
		return STORE_ERR;
	rc = store_q(st, "SELECT n.id, n.network, NULL, NULL, n.ipv4 FROM nics n"
		     " WHERE n.network = ? AND n.ipv4 IS NOT NULL", &SV_I(network), 1, rows_add, &r);
	base = ntohl(net.s_addr);
	size = UINT32_C(1) << (32 - len);
	for (uint32_t host = 2; rc == STORE_OK && host < size - 1 && *out == NULL; host++) {
		struct in_addr a = { .s_addr = htonl(base + host) };
		char buf[INET_ADDRSTRLEN];
		bool used = false;
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		for (size_t i = 0; i < r.n && !used; i++)
			used = strcmp(((struct nic *)r.v)[i].ipv4, buf) == 0;
		if (!used)
			*out = strdup(buf);
	}
	for (size_t i = 0; i < r.n; i++)
		free(((struct nic *)r.v)[i].ipv4);
	free(r.v);
	if (rc == STORE_OK && *out == NULL)
		rc = STORE_FULL;
	return rc;
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
	rc = store_counter_next(st, "vm", VM_ID_MAX, &vm->id);
	vm->created = now_unix();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(vm->id), SV_S(vm->name), SV_I(vm->owner), SV_I(vm->image),
			SV_I(vm->cpus), SV_I(vm->memory_mib), SV_S(vm->desired), SV_S(vm->state),
			SV_S(vm->host), SV_I(vm->created), SV_S(ud), SV_I(vm->config_drive ? 1 : 0),
			SV_I(vm->disk_size), SV_I(vm->ephemeral ? 1 : 0),
			SV_S(vm->metadata_tokens_required ? "required" : "optional") };
		rc = store_w(st, "INSERT INTO vms (id, name, owner, image, cpus, memory_mib, desired,"
			     " state, host, created, user_data, config_drive, disk_size, ephemeral,"
			     " metadata_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     p, 15);
	}
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
		if (rc == STORE_OK) {
			struct sval p[] = { SV_I(nic_id), SV_I(vm->id), SV_I(net.id), SV_I(i), SV_S(ipv4) };
			rc = store_w(st, "INSERT INTO nics (id, vm, network, idx, ipv4)"
				     " VALUES (?, ?, ?, ?, ?)", p, 5);
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
		rc = store_w(st, "UPDATE vms SET desired = ?, error = NULL WHERE id = ?", p, 2);
	return store_tx_end(st, rc);
}

int store_vm_set_metadata_tokens(struct store *st, uint64_t id, bool required)
{
	struct sval p[] = { SV_S(required ? "required" : "optional"), SV_I(id) };
	return store_w(st, "UPDATE vms SET metadata_tokens = ? WHERE id = ?", p, 2);
}

int store_vm_set_state(struct store *st, uint64_t id, const char *state, const char *error)
{
	struct sval p[] = { SV_S(state), SV_S(error), SV_I(id) };
	/* Observations of the host are not changes of intent: no hook. */
	return store_q(st, "UPDATE vms SET state = ?, error = ? WHERE id = ?", p, 3, NULL, NULL);
}

int store_vm_purge(struct store *st, uint64_t id)
{
	int rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM nics WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM rules WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vm_keys WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vm_disks WHERE vm = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM vms WHERE id = ?", &SV_I(id), 1, NULL, NULL);
	return store_tx_end(st, rc);
}

/* ---- NICs --------------------------------------------------------------- */

int store_nic_add(struct store *st, uint64_t vm_id, uint64_t network, uint64_t *nic_id)
{
	struct network net = { 0 };
	int64_t idx = -1;
	char *ipv4 = NULL;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = network_one(st, "x.id = ?", &SV_I(network), 1, &net);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COALESCE(MAX(idx), -1) FROM nics WHERE vm = ?", &SV_I(vm_id), 1,
			     store_row_int, &idx);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "nic", NIC_ID_MAX, nic_id);
	if (rc == STORE_OK)
		rc = ipv4_allocate(st, net.ipv4, net.id, &ipv4);
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(*nic_id), SV_I(vm_id), SV_I(net.id), SV_I(idx + 1), SV_S(ipv4) };
		rc = store_w(st, "INSERT INTO nics (id, vm, network, idx, ipv4) VALUES (?, ?, ?, ?, ?)", p, 5);
	}
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
