/*
 * fwgen — a synthetic netstate with N NICs, for the firewall benchmark and
 * for checking by hand that the generated ruleset loads.  Not part of the
 * product; built by bench/firewall.sh.
 *
 *   fwgen [options] print     the ruleset on stdout (pure, needs no root)
 *   fwgen [options] apply     firewall_apply(); prints "<ms> <version> <cpu ms>"
 *   fwgen [options] time      generate and apply, prints "<gen ms> <apply ms>"
 *   fwgen [options] model     the model alone (fw_generate), prints the
 *                             fastest of 9 runs, "<ms>"
 *   fwgen [options] text      the baseline: the same ruleset as text through
 *                             libnftables (both tables replaced in one
 *                             transaction), prints "<gen ms> <apply ms>"
 *   fwgen remove              firewall_remove()
 *
 * Options: -n NICS (100) -N NETS (4) -p NICS_PER_VM (1) -r RULE_EVERY (10:
 * every 10th VM gets two rules, one of them with a source prefix; 0 = none)
 * -u UPLINK  -x EXTRA (shifts the rules' ports: a different state with the
 * same NICs)  -d (every VM's rules differ: its ports depend on its ID, so no
 * two VMs share a rule chain — the worst case).  The state is a function
 * of the options only.
 */
#include "common/ids.h"
#include "net/firewall.h"
#include "net/fw_model.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double clock_ms(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* CPU time of this process, user and kernel: the kernel commits a
 * netlink batch in the sender's context, so this counts its work too,
 * and not the time other processes of a busy machine take meanwhile. */
static double cpu_ms(void)
{
	return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fwgen: %s: %s\n", what, why ? why : "failed");
	exit(1);
}

static void build(struct netstate *ns, size_t n_nics, size_t n_nets, size_t per_vm,
		  size_t rule_every, int extra, bool distinct, const char *uplink)
{
	memset(ns, 0, sizeof(*ns));
	ns->nets = calloc(n_nets + 1, sizeof(*ns->nets));
	ns->nics = calloc(n_nics + 1, sizeof(*ns->nics));
	ns->rules = calloc(2 * n_nics + 1, sizeof(*ns->rules));
	if (!ns->nets || !ns->nics || !ns->rules)
		die("build", "out of memory");
	ns->n_nets = n_nets;
	for (size_t k = 0; k < n_nets; k++) {
		struct ns_net *n = &ns->nets[k];
		n->id = k + 1;
		snprintf(n->bridge, sizeof(n->bridge), "%s", ifname_bridge(n->id).s);
		n->prefix6.s6_addr[0] = 0xfd;
		n->prefix6.s6_addr[2] = (uint8_t)(n->id >> 8);
		n->prefix6.s6_addr[3] = (uint8_t)n->id;
		n->has_ip4 = true;
		n->net4.s_addr = htonl(0x0a000000u | (uint32_t)(n->id << 16));
		n->len4 = 16;
	}
	ns->n_nics = n_nics;
	for (size_t i = 0; i < n_nics; i++) {
		struct ns_nic *c = &ns->nics[i];
		uint8_t iid[8];
		c->id = 0x100 + i;
		c->vm_id = i / per_vm + 1;
		c->net_id = i % n_nets + 1;
		snprintf(c->ifname, sizeof(c->ifname), "%s", ifname_tap(c->id).s);
		nic_mac_bytes(c->id, c->mac);
		eui64_from_mac(c->mac, iid);
		c->ll6.s6_addr[0] = 0xfe;
		c->ll6.s6_addr[1] = 0x80;
		memcpy(c->ll6.s6_addr + 8, iid, 8);
		c->ip6 = ns->nets[c->net_id - 1].prefix6;
		memcpy(c->ip6.s6_addr + 8, iid, 8);
		c->has_ip4 = true;
		c->ip4.s_addr = htonl(ntohl(ns->nets[c->net_id - 1].net4.s_addr) + 2 + (uint32_t)(i / n_nets));
		c->active = true;
	}
	for (uint64_t vm = 1; rule_every > 0 && vm <= (n_nics + per_vm - 1) / per_vm; vm++) {
		if (vm % rule_every != 0)
			continue;
		int d = distinct ? (int)(vm % 30000) : 0;
		struct ns_rule *r = &ns->rules[ns->n_rules++];
		*r = (struct ns_rule){ .id = 2 * vm, .vm_id = vm, .proto = NS_PROTO_TCP,
				       .port_lo = 22 + extra + d, .port_hi = 22 + extra + d };
		r = &ns->rules[ns->n_rules++];
		*r = (struct ns_rule){ .id = 2 * vm + 1, .vm_id = vm, .proto = NS_PROTO_TCP,
				       .port_lo = 8000 + d, .port_hi = 8080 + extra + d, .family = AF_INET,
				       .source = strdup("10.0.0.0/8") };
	}
	ns->uplink = uplink ? strdup(uplink) : NULL;
	ns->metadata_port = 80 + extra;     /* -x changes the state even without rules */
}

int main(int argc, char **argv)
{
	size_t n_nics = 100, n_nets = 4, per_vm = 1, rule_every = 10;
	int extra = 0, opt;
	bool distinct = false;
	const char *uplink = NULL;
	struct netstate ns;
	char *err = NULL, *version = NULL, *text;
	double t0, t1, t2;

	while ((opt = getopt(argc, argv, "dn:N:p:r:u:x:")) != -1) {
		switch (opt) {
		case 'n': n_nics = strtoul(optarg, NULL, 10); break;
		case 'N': n_nets = strtoul(optarg, NULL, 10); break;
		case 'p': per_vm = strtoul(optarg, NULL, 10); break;
		case 'r': rule_every = strtoul(optarg, NULL, 10); break;
		case 'u': uplink = optarg; break;
		case 'x': extra = atoi(optarg); break;
		case 'd': distinct = true; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || n_nets == 0 || per_vm == 0) {
		fprintf(stderr, "usage: fwgen [-n nics] [-N nets] [-p nics/vm] [-r rule-every] "
			"[-u uplink] [-x extra] [-d] print|apply|time|model|text|remove\n");
		return 2;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "remove") == 0) {
		if (firewall_remove(&err) < 0)
			die("remove", err);
		return 0;
	}
	build(&ns, n_nics, n_nets, per_vm, rule_every, extra, distinct, uplink);
	if (strcmp(cmd, "print") == 0) {
		if ((text = firewall_ruleset(&ns, NULL)) == NULL) {
			firewall_check(&ns, &err);
			die("generate", err);
		}
		fputs(text, stdout);
		free(text);
	} else if (strcmp(cmd, "apply") == 0 || strcmp(cmd, "time") == 0) {
		t0 = now_ms();
		if ((text = firewall_ruleset(&ns, &version)) == NULL)
			die("generate", "failed");
		double c1 = cpu_ms();
		t1 = now_ms();
		if (firewall_apply(&ns, &err) < 0)
			die("apply", err);
		t2 = now_ms();
		double c2 = cpu_ms();
		/* apply generates again (it is self-contained); the apply figure
		 * is therefore generate + list + transaction. */
		if (strcmp(cmd, "time") == 0)
			printf("%.1f %.1f %s\n", t1 - t0, t2 - t1, version);
		else
			printf("%.1f %s %.1f\n", t2 - t1, version, c2 - c1);
		free(text);
		free(version);
	} else if (strcmp(cmd, "model") == 0) {
		/* The fastest of 9: the cost of the code, not of the machine's load. */
		double best = 1e9;
		for (int i = 0; i < 9; i++) {
			struct fw_model m;
			t0 = now_ms();
			if (fw_generate(&ns, &m, &err) < 0)
				die("generate", err);
			t1 = now_ms();
			best = t1 - t0 < best ? t1 - t0 : best;
			fw_model_free(&m);
		}
		printf("%.1f\n", best);
	} else if (strcmp(cmd, "text") == 0) {
		/* What hcd did before the netlink batch: text, parsed by nft. */
		static const char drop[] = "add table bridge " FIREWALL_TABLE "\ndelete table bridge " FIREWALL_TABLE
					   "\nadd table inet " FIREWALL_TABLE "\ndelete table inet " FIREWALL_TABLE "\n";
		struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
		char *script;
		t0 = now_ms();
		if ((text = firewall_ruleset(&ns, &version)) == NULL)
			die("generate", "failed");
		t1 = now_ms();
		if (ctx == NULL || nft_ctx_buffer_error(ctx) < 0 || asprintf(&script, "%s%s", drop, text) < 0)
			die("text", "out of memory");
		if (nft_run_cmd_from_buffer(ctx, script) != 0)
			die("text", nft_ctx_get_error_buffer(ctx));
		t2 = now_ms();
		printf("%.1f %.1f %s\n", t1 - t0, t2 - t1, version);
		free(script);
		nft_ctx_free(ctx);
		free(text);
		free(version);
	} else {
		die(cmd, "unknown command");
	}
	netstate_free(&ns);
	return 0;
}
