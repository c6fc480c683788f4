/*
 * keys — SSH public keys as a resource of their owner (DESIGN §7, §8):
 *   GET    /v1/keys            the caller's keys (all, for admins)
 *   POST   /v1/keys            {name, pubkey} → 201, the key
 *   GET    /v1/keys/{ref}
 *   DELETE /v1/keys/{ref}      409 while a VM uses it
 * and the user data of a VM, returned raw:
 *   GET    /v1/vms/{ref}/user-data
 *
 * A key is stored as the canonical line common/sshkey.c made of it, so
 * what a guest later receives is exactly what was validated.  Key material
 * never appears in a log or an error message; fingerprints may.
 */
#include "api/handlers.h"

#include "api/codec.h"

#include "common/sshkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *key_to_json(const struct key *k)
{
	char id[KEY_ID_DIGITS + 1];

	id8_format(k->id, id);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
		"id", id,
		"name", k->name,
		"type", k->type,
		"fingerprint", k->fingerprint,
		"pubkey", k->pubkey,
		"owner", k->owner_name ? k->owner_name : "",
		"created", (json_int_t)k->created);
}

static bool key_resolve(struct req *r, struct key *k)
{
	int rc = store_key_get(r->api->st, req_ref(r), req_scope(r), k);

	if (rc != STORE_OK) {
		req_store_error(r, rc, "key", r->params[0]);
		return false;
	}
	return true;
}

int h_key_list(struct req *r)
{
	struct key *keys = NULL;
	size_t n = 0;
	int rc = store_key_list(r->api->st, req_scope(r), &keys, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "key", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, key_to_json(&keys[i]));
	keys_free(keys, n);
	return req_json(r, 200, arr);
}

int h_key_create(struct req *r)
{
	const char *member, *name, *text;
	json_t *v, *jname, *jkey;
	struct sshkey sk;
	char err[SSHKEY_ERR_LEN];

	json_object_foreach(r->json, member, v) {
		if (strcmp(member, "name") && strcmp(member, "pubkey"))
			return req_error(r, 400, "bad_request", "unknown field '%s'", member);
	}
	jname = json_object_get(r->json, "name");
	jkey = json_object_get(r->json, "pubkey");
	if (!json_is_string(jname))
		return req_error(r, 400, "bad_request", "'name' is required and must be a string");
	if (!json_is_string(jkey))
		return req_error(r, 400, "bad_request", "'pubkey' is required and must be a string");
	name = json_string_value(jname);
	text = json_string_value(jkey);
	if (!api_name_check(r, name, KEY_ID_DIGITS, "key"))
		return 0;
	/* A NUL inside the JSON string would hide the rest from the parser. */
	if (strlen(text) != json_string_length(jkey))
		return req_error(r, 400, "bad_key", "'pubkey' must not contain NUL characters");
	if (sshkey_parse(text, &sk, err) != 0)
		return req_error(r, 400, "bad_key", "'pubkey': %s", err);

	struct key k = { .name = (char *)name, .owner = r->caller, .type = sk.type,
			 .pubkey = sk.line, .fingerprint = sk.fingerprint };
	int rc = store_key_create(r->api->st, &k);
	sshkey_free(&sk);
	if (rc == STORE_CONFLICT)
		return req_error(r, 409, "conflict", "key '%s' already exists", name);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "key", name);
	struct key out = { 0 };
	char id[KEY_ID_DIGITS + 1];
	id8_format(k.id, id);
	rc = store_key_get(r->api->st, id, OWNER_ANY, &out);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "key", name);
	req_json(r, 201, key_to_json(&out));
	key_free(&out);
	return 0;
}

int h_key_get(struct req *r)
{
	struct key k = { 0 };

	if (!key_resolve(r, &k))
		return 0;
	req_json(r, 200, key_to_json(&k));
	key_free(&k);
	return 0;
}

int h_key_delete(struct req *r)
{
	struct key k = { 0 };
	int rc;

	if (!key_resolve(r, &k))
		return 0;
	rc = store_key_delete(r->api->st, k.id);
	if (rc == STORE_CONFLICT)
		req_error(r, 409, "in_use", "key '%s' is used by a VM", k.name);
	else if (rc != STORE_OK)
		req_store_error(r, rc, "key", r->params[0]);
	else
		req_json(r, 200, key_to_json(&k));
	key_free(&k);
	return 0;
}

/* ---- user data of a VM -------------------------------------------------- */

int h_vm_user_data(struct req *r)
{
	struct vm vm = { 0 };
	int rc = store_vm_get(r->api->st, req_ref(r), req_scope(r), &vm);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", r->params[0]);
	/* Bytes as given, not text. */
	req_bytes(r, 200, "application/octet-stream", vm.user_data, vm.user_data_len);
	vm.user_data = NULL;   /* the answer owns it now */
	vm_free(&vm);
	return 0;
}
