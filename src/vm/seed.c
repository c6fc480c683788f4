/* seed — see seed.h. */
#include "vm/seed.h"

#include "common/addrpool.h"
#include "common/fsutil.h"
#include "common/ids.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GENISOIMAGE_TIMEOUT_MS 60000

/* Append s to *buf as a YAML double-quoted scalar. */
static void yaml_quoted(char **buf, const char *s)
{
	char *q = strdup("\""), *n;

	for (const unsigned char *c = (const unsigned char *)s; q && *c; c++) {
		if (*c == '"' || *c == '\\')
			n = str_printf("%s\\%c", q, *c);
		else if (*c < 0x20 || *c == 0x7f)
			n = str_printf("%s\\x%02x", q, *c);
		else
			n = str_printf("%s%c", q, *c);
		free(q);
		q = n;
	}
	n = q && *buf ? str_printf("%s%s\"", *buf, q) : NULL;
	free(q);
	free(*buf);
	*buf = n;
}

static void appendf(char **buf, const char *fmt, const char *a, const char *b)
{
	char *part = *buf ? str_printf(fmt, a, b) : NULL;
	char *n = part ? str_printf("%s%s", *buf, part) : NULL;
	free(part);
	free(*buf);
	*buf = n;
}

void seed_files_free(struct seed_files *f)
{
	free(f->meta);
	free(f->user);
	free(f->net);
	memset(f, 0, sizeof(*f));
}

int seed_render(const struct vm *vm, struct seed_files *out)
{
	char *user = NULL, *net;

	memset(out, 0, sizeof(*out));
	out->meta = str_printf("instance-id: i-%s\nlocal-hostname: %s\n", vm_id_format(vm->id).s,
			       vm->name);
	if (vm->user_data) {
		if ((out->user = malloc(vm->user_data_len + 1)) != NULL)
			memcpy(out->user, vm->user_data, vm->user_data_len);
		out->user_len = vm->user_data_len;
	} else {
		/* No user data: a cloud-config that installs the VM's keys. */
		user = strdup(vm->n_keys ? "#cloud-config\nssh_authorized_keys:\n" : "#cloud-config\n{}\n");
		for (size_t i = 0; user && i < vm->n_keys; i++) {
			if (vm->keys[i].pubkey == NULL)
				continue;
			appendf(&user, "%s%s", "  - ", "");
			yaml_quoted(&user, vm->keys[i].pubkey);
			appendf(&user, "%s%s", "\n", "");
		}
		out->user = (unsigned char *)user;
		out->user_len = user ? strlen(user) : 0;
	}
	net = strdup(vm->n_nics ? "version: 2\nethernets:\n" : "version: 2\nethernets: {}\n");
	for (size_t i = 0; net && i < vm->n_nics; i++) {
		char ifname[32];
		snprintf(ifname, sizeof(ifname), "eth%zu", i);
		appendf(&net, "  %s:\n    match:\n      macaddress: \"%s\"\n", ifname,
			nic_mac_format(vm->nics[i].id).s);
		appendf(&net, "    set-name: %s\n    dhcp4: %s\n", ifname,
			vm->nics[i].ipv4 ? "true" : "false");
		appendf(&net, "    dhcp6: false\n    accept-ra: true\n%s%s", "", "");
		/* Routed prefixes (issue 13): the address the guest takes from each. */
		for (size_t j = 0, said = 0; j < vm->nics[i].n_prefixes; j++) {
			char addr[INET6_ADDRSTRLEN];
			if (prefix_suggested_address(vm->nics[i].prefixes[j], addr, sizeof(addr)))
				appendf(&net, "%s      - \"%s/128\"\n", said++ ? "" : "    addresses:\n", addr);
		}
	}
	out->net = net;
	if (out->meta == NULL || out->user == NULL || out->net == NULL) {
		seed_files_free(out);
		return -1;
	}
	return 0;
}

/* One input file, readable by the VM's group only (genisoimage runs as
 * the VM). */
static int seed_file_write(const char *path, const void *data, size_t len,
			   const struct proc_opts *id)
{
	if (file_write_atomic(path, data, len, 0640) < 0 || chown(path, 0, id->gid) < 0)
		return -1;
	return 0;
}

char *seed_build(const struct seed_files *f, const struct vm_paths *p, const struct proc_opts *id,
		 char **err)
{
	char *dir = str_printf("%s/seed", p->dir);
	char *f_meta = dir ? str_printf("%s/meta-data", dir) : NULL;
	char *f_user = dir ? str_printf("%s/user-data", dir) : NULL;
	char *f_net = dir ? str_printf("%s/network-config", dir) : NULL;
	char *iso = str_printf("%s/seed.iso", p->dir);
	char *tmp = str_printf("%s/seed.iso.tmp", p->dir);
	char *out = NULL;
	int rc;

	*err = NULL;
	if (!f_meta || !f_user || !f_net || !iso || !tmp) {
		*err = strdup("out of memory");
		goto fail;
	}
	if (mkdir_p(dir, 0750) < 0 || chown(dir, 0, id->gid) < 0 || chmod(dir, 0750) < 0 ||
	    seed_file_write(f_meta, f->meta, strlen(f->meta), id) < 0 ||
	    seed_file_write(f_user, f->user, f->user_len, id) < 0 ||
	    seed_file_write(f_net, f->net, strlen(f->net), id) < 0) {
		*err = str_printf("seed: %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (qemu_file_for_tool(tmp, id, err) < 0)
		goto fail_tmp;
	char *argv[] = { "genisoimage", "-quiet", "-output", tmp, "-volid", "cidata", "-joliet",
			 "-rock", f_meta, f_user, f_net, NULL };
	struct proc_opts o = *id;
	o.timeout_ms = GENISOIMAGE_TIMEOUT_MS;
	rc = proc_run_opts(argv, &o, &out, 4096, true);
	if (rc != 0) {
		*err = rc < 0 ? str_printf("genisoimage: %s", strerror(errno))
			      : str_printf("genisoimage failed (%d): %s", rc, out ? out : "");
		goto fail_tmp;
	}
	if (rename(tmp, iso) < 0) {
		*err = str_printf("seed: %s: %s", iso, strerror(errno));
		goto fail_tmp;
	}
	goto done;
fail_tmp:
	file_remove(tmp);
fail:
	free(iso);
	iso = NULL;
done:
	free(dir);
	free(f_meta);
	free(f_user);
	free(f_net);
	free(tmp);
	free(out);
	return iso;
}

void seed_remove(const struct vm_paths *p)
{
	char *dir = str_printf("%s/seed", p->dir);
	char *iso = str_printf("%s/seed.iso", p->dir);

	if (dir)
		dir_remove_tree(dir);
	if (iso)
		file_remove(iso);
	free(dir);
	free(iso);
}
