/*
 * fuzz_metadata — what the metadata service answers a guest
 * (metadata/tree.h metadata_render): the path is the guest's, the VM is
 * whatever the store holds (user data and key names are the owner's).
 *
 * Input: a line with the number of paths (up to 8), the paths, then the VM
 * (model.h).  Every answer is 200 with a body or 404 without; a text body
 * is as long as it says; a JSON body parses; a key and the instance ID are
 * served exactly as stored.
 *
 * Then, optionally, IMDSv2 (metadata/imds_token.h), whose headers are the
 * guest's: a TTL header, a token header, and a VM ID and a time (ms) at
 * which to check a token this harness mints for the VM with a 60 s TTL.
 * A TTL is accepted only as the plain decimal of 1..21600; a token the
 * input wrote is good only if it is, byte for byte, one we minted; ours is
 * good for its VM until it expires, another VM's before, expired after.
 */
#include "fuzz.h"
#include "model.h"

#include "common/ids.h"
#include "metadata/imds_token.h"
#include "metadata/tree.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct vm *vm, const char *path)
{
	struct md_reply r;
	int status = metadata_render(vm, path, &r);

	FUZZ_ASSERT(status == r.status, "returned %d, reply says %d", status, r.status);
	FUZZ_ASSERT((status == 200 && r.body != NULL) || (status == 404 && r.body == NULL),
		    "'%s': status %d with body %p", path, status, (void *)r.body);
	FUZZ_ASSERT(r.type != NULL, "'%s': no content type", path);
	if (r.body && strncmp(r.type, "text/", 5) == 0)
		FUZZ_ASSERT(strlen(r.body) == r.len, "'%s': length %zu of a text of %zu", path,
			    r.len, strlen(r.body));
	if (r.body && strcmp(r.type, "application/json") == 0) {
		json_t *j = json_loadb(r.body, r.len, 0, NULL);
		FUZZ_ASSERT(j != NULL, "'%s': JSON that does not parse", path);
		json_decref(j);
	}
	/* Exact answers for the paths cloud-init relies on. */
	if (strcmp(path, "/latest/meta-data/instance-id") == 0) {
		char want[32];
		snprintf(want, sizeof(want), "i-%s", vm_id_format(vm->id).s);
		FUZZ_ASSERT(r.body && strcmp(r.body, want) == 0, "instance-id '%s'",
			    r.body ? r.body : "(none)");
	}
	if (strcmp(path, "/latest/meta-data/public-keys/0/openssh-key") == 0 && vm->n_keys &&
	    vm->keys[0].pubkey) {
		FUZZ_ASSERT(r.body && strncmp(r.body, vm->keys[0].pubkey, strlen(vm->keys[0].pubkey)) == 0 &&
			    strcmp(r.body + strlen(vm->keys[0].pubkey), "\n") == 0, "key 0 changed");
	}
	free(r.body);
}

static void check_imds(struct fuzz_in *in, uint64_t vm)
{
	static const uint8_t key[IMDS_KEY_BYTES] = "hackcloud fuzz key, 32 bytes..";
	char *ttl = fuzz_line(in), *token = fuzz_line(in), minted[IMDS_TOKEN_CHARS + 1], num[16];
	uint64_t asker = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	int64_t at = fuzz_num(in, 0, 120000);
	const int64_t now = 1000;

	if (ttl) {
		int v = imds_ttl_parse(ttl);
		snprintf(num, sizeof(num), "%d", v);
		FUZZ_ASSERT(v == -1 || (v >= 1 && v <= IMDS_TTL_MAX && strspn(ttl, "0123456789") ==
			    strlen(ttl) && strtol(ttl, NULL, 10) == v), "TTL '%s' read as %d", ttl, v);
	}
	imds_token_mint(key, vm, now, 60, minted);
	if (token) {
		enum imds_check c = imds_token_check(key, token, vm, now);
		FUZZ_ASSERT(c == IMDS_TOKEN_FORGED || strcmp(token, minted) == 0,
			    "the guest's token '%s' passed as %d", token, (int)c);
	}
	enum imds_check c = imds_token_check(key, minted, asker, at);
	enum imds_check want = at >= now + 60000 ? IMDS_TOKEN_EXPIRED
			       : asker == vm ? IMDS_TOKEN_OK : IMDS_TOKEN_OTHER_VM;
	FUZZ_ASSERT(c == want, "our token for %llu checked for %llu at %lld: %d, not %d",
		    (unsigned long long)vm, (unsigned long long)asker, (long long)at, (int)c,
		    (int)want);
	free(ttl);
	free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { (const char *)data, (const char *)data + size };
	char *paths[8];
	size_t n = (size_t)fuzz_num(&in, 0, 8);
	struct vm vm;

	for (size_t i = 0; i < n; i++) {
		paths[i] = fuzz_line(&in);
		if (paths[i] == NULL)
			paths[i] = fuzz_cstr(NULL, 0);
	}
	model_vm(&in, &vm);
	for (size_t i = 0; i < n; i++) {
		check(&vm, paths[i]);
		free(paths[i]);
	}
	check_imds(&in, vm.id);
	vm_free(&vm);
	return 0;
}
