/*
 * fuzz_codec — the JSON the API makes of store rows (api/codec.h) and the
 * address it derives from a network's prefix (nic_ipv6).
 *
 * The input is read line by line into a VM, an image and a network
 * (model.h) with whatever text the lines hold.  Names, states and prefixes
 * reach the store only through the API's checks, so they are ASCII; free
 * text does not: a host name from another host's hcd.conf, an error from
 * QEMU or from an import, a URL.  Whenever the checked fields are UTF-8
 * (they always are), each row must turn into JSON whatever bytes its free
 * text holds — a NULL here is a 500, and a VM or image that cannot be shown
 * or listed.  That JSON must dump and load back equal, and a NIC's IPv6
 * address must lie in its network's /64.
 */
#include "fuzz.h"
#include "model.h"

#include "api/codec.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Is s valid UTF-8 (jansson's own judgement)? */
static bool utf8(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	json_decref(j);
	return s == NULL || j != NULL;
}

static bool vm_checked_utf8(const struct vm *vm)
{
	bool ok = utf8(vm->name) && utf8(vm->owner_name) && utf8(vm->image_name) &&
		  utf8(vm->desired) && utf8(vm->state);

	for (size_t i = 0; i < vm->n_nics; i++)
		ok = ok && utf8(vm->nics[i].network_name);
	for (size_t i = 0; i < vm->n_keys; i++)
		ok = ok && utf8(vm->keys[i].name) && utf8(vm->keys[i].fingerprint);
	return ok;
}

static bool image_checked_utf8(const struct image *im)
{
	return utf8(im->name) && utf8(im->owner_name) && utf8(im->format) && utf8(im->boot) &&
	       utf8(im->state) && utf8(im->visibility);
}

static bool network_checked_utf8(const struct network *n)
{
	return utf8(n->name) && utf8(n->owner_name) && utf8(n->ipv6);
}

static void round_trip(json_t *j, bool must, const char *what)
{
	if (j == NULL && !must)
		return;
	FUZZ_ASSERT(j != NULL, "%s_to_json gave NULL", what);
	char *text = json_dumps(j, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL, "%s: JSON does not dump", what);
	json_error_t err;
	json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	FUZZ_ASSERT(back != NULL, "%s: dumped JSON does not load: %s", what, err.text);
	FUZZ_ASSERT(json_equal(j, back), "%s: JSON changed through text", what);
	json_decref(back);
	free(text);
	json_decref(j);
}

static void check_nic_ipv6(const struct nic *n)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr prefix, a;

	if (n->network_ipv6 == NULL || !nic_ipv6(n->network_ipv6, n->id, buf, sizeof(buf)))
		return;
	FUZZ_ASSERT(ipv6_prefix64_parse(n->network_ipv6, &prefix), "nic_ipv6 took '%s'",
		    n->network_ipv6);
	FUZZ_ASSERT(inet_pton(AF_INET6, buf, &a) == 1, "nic_ipv6 wrote '%s'", buf);
	FUZZ_ASSERT(memcmp(&a, &prefix, 8) == 0, "%s is outside %s", buf, n->network_ipv6);
}

/* A member of the object written for fields (a comma list; "nics.X"
 * names NIC members)? */
static bool asked(const char *fields, const char *key)
{
	size_t len = strlen(key);

	for (const char *f = fields; *f; f += strcspn(f, ",") + (f[strcspn(f, ",")] == ',')) {
		size_t n = strcspn(f, ",");
		if (n >= len && strncmp(f, key, len) == 0 && (n == len || f[len] == '.'))
			return true;
	}
	return false;
}

/*
 * GET /v1/vms writes its answer as text (vm_json_write), VM by VM, with
 * the members the "fields" query names: whatever the VM holds, that text
 * is JSON jansson reads, and holds the members asked for and no others.
 */
static void check_listing(const struct vm *vm, const char *fields)
{
	struct jbuf b = { 0 };
	bool known = true;

	for (const char *f = fields ? fields : ""; *f; f += strcspn(f, ",") + (f[strcspn(f, ",")] == ','))
		known = known && vm_json_field_known(f, strcspn(f, ","));
	if (fields && (!known || fields[0] == '\0'))
		fields = NULL;          /* the API refuses unknown ones with a 400 */
	FUZZ_ASSERT(vm_json_write(vm, fields, &b), "vm_json_write failed");
	json_error_t err;
	json_t *j = json_loadb(b.s, b.len, 0, &err);
	FUZZ_ASSERT(j != NULL && json_is_object(j), "the listing is not JSON: %s: %.*s", err.text,
		    (int)b.len, b.s);
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v)
		FUZZ_ASSERT(fields == NULL || asked(fields, key), "'%s' written for fields '%s'", key,
			    fields);
	json_decref(j);
	free(b.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { (const char *)data, (const char *)data + size };
	struct vm vm;
	struct image im;
	struct network net;
	char id8[9];

	model_vm(&in, &vm);
	model_image(&in, &im);
	model_network(&in, &net);
	char *fields = fuzz_line(&in);
	for (size_t i = 0; i < vm.n_nics; i++)
		check_nic_ipv6(&vm.nics[i]);
	round_trip(vm_to_json(&vm), vm_checked_utf8(&vm), "vm");
	check_listing(&vm, fields);
	free(fields);
	round_trip(image_to_json(&im), image_checked_utf8(&im), "image");
	round_trip(network_to_json(&net), network_checked_utf8(&net), "network");
	id8_format(im.id, id8);
	FUZZ_ASSERT(strlen(id8) == 8, "id8 '%s'", id8);
	vm_free(&vm);
	image_free(&im);
	network_free(&net);
	return 0;
}
