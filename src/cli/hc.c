/*
 * hc.c — the command table, the argument parser and main (see cli.h for
 * the contract of the whole client).
 *
 * A command line is read in one pass: global options anywhere, then the
 * noun, then the verb (unless the noun is a command by itself), then the
 * command's positionals and options in any order ("--opt VALUE",
 * "--opt=VALUE"; "--" ends the options).  --help at any level prints what
 * the table says about that level and nothing is sent to the daemon.
 */
#include "cli/cli.h"

#include "common/fsutil.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_URL "unix:/var/lib/hackcloud/api.sock"
#define USAGE "[--url URL | --state-dir DIR] [--json] NOUN [VERB] [ARGS]..."

/* ---- the table ---------------------------------------------------------- */

static const struct opt_spec import_opts[] = {
	{ "--kernel", "F", false, "kernel file of a directly booted image" },
	{ "--initrd", "F", false, "initrd file to go with --kernel" },
	{ "--cmdline", "S", false, "kernel command line (default: the daemon's)" },
	{ "--disk", "F", false, "raw or qcow2 disk file of a firmware-booted image" },
	{ "--url", "URL", false, "let hcd download a raw or qcow2 disk from http(s)://…"
	  " (hc's own --url goes before 'image')" },
	{ "--sha256", "HEX", false, "the checksum the download must have (with --url)" },
	{ "--public", NULL, false, "let every user see and boot the image" },
	{ 0 },
};

static const struct opt_spec image_create_opts[] = {
	{ "--from-vm", "VM", false, "the stopped VM whose root disk becomes the image (flattened)" },
	{ "--public", NULL, false, "let every user see and boot the image" },
	{ 0 },
};

static const struct opt_spec vm_snapshot_opts[] = {
	{ "--discard-newer", NULL, false, "restore: also when newer snapshots exist (they go)" },
	{ 0 },
};

static const struct opt_spec build_opts[] = {
	{ "--recipe", "R", false, "builder recipe (builder/recipes/R.sh): tiny or debian (required)" },
	{ "--suite", "S", false, "debian: the Debian suite (default bookworm)" },
	{ "--packages", "P1,P2", false, "debian: packages beyond the base system"
	  " (default cloud-init,openssh-server)" },
	{ "--mirror", "URL", false, "debian: the Debian mirror (default: the host's apt source)" },
	{ "--size", "SIZE", false, "debian: the disk's size, e.g. 2G (default 2G)" },
	{ "--public", NULL, false, "let every user see and boot the image" },
	{ 0 },
};

static const struct opt_spec net_create_opts[] = {
	{ "--ipv6", "PREFIX/64", false,
	  "the network's IPv6 prefix (default: the next free /64 of the tenant pool)" },
	{ "--ipv4", "CIDR", false,
	  "an optional IPv4 subnet, e.g. 10.0.0.0/24, or auto (the next free /24 of the pool)" },
	{ "--rate", "SPEC", false, "default limit of its NICs: RATE[:BURST] or IN/OUT, e.g. 100mbit"
	  " or 20mbit:64k/10mbit (in = to the VM)" },
	{ 0 },
};

static const struct opt_spec net_set_opts[] = {
	{ "--rate", "SPEC", false, "default limit of its NICs (none: no default)" },
	{ 0 },
};

static const struct opt_spec key_add_opts[] = {
	{ "--file", "F", false, "read the public key from this file (e.g. ~/.ssh/id_ed25519.pub)" },
	{ 0 },
};

static const struct opt_spec vm_create_opts[] = {
	{ "--image", "IMG", false, "image to boot, by name or ID (required)" },
	{ "--net", "NET", true, "add a NIC on this network (repeatable); NET:rate=SPEC limits it" },
	{ "--rate", "SPEC", false, "limit every NIC: RATE[:BURST] or IN/OUT, e.g. 100mbit"
	  " (in = to the VM)" },
	{ "--cpus", "N", false, "virtual CPUs (default 1)" },
	{ "--memory", "MIB", false, "memory in MiB (default 256)" },
	{ "--key", "KEY", true, "install this SSH key (repeatable; default: all of yours)" },
	{ "--user-data", "FILE", false, "user data for the guest, at most 64 KiB" },
	{ "--config-drive", NULL, false, "also attach a NoCloud seed (cidata CD-ROM)" },
	{ "--host", "HOST", false, "place it on this host (admins; default: the scheduler's choice)" },
	{ "--ephemeral", NULL, false, "its disks may be made anew elsewhere when its host dies" },
	{ "--disk-size", "SIZE", false, "root disk size, e.g. 4G (default: the image's own)" },
	{ "--disk", "SIZE", true, "add an empty data disk of SIZE, e.g. 10G (repeatable, at most 8)" },
	{ "--no-start", NULL, false, "create it stopped" },
	{ "--metadata-tokens", "MODE", false, "optional or required: whether the metadata service"
	  " also answers requests without an IMDSv2 token (default: hcd's metadata_tokens)" },
	{ 0 },
};

static const struct opt_spec vm_set_opts[] = {
	{ "--cpus", "N", false, "virtual CPUs: at the next start, or at once by CPU hotplug when it"
	  " runs (up to the maxcpus it started with)" },
	{ "--memory", "MIB", false, "memory in MiB: at the next start, or at once by the balloon"
	  " when it runs (up to the memory it started with)" },
	{ "--metadata-tokens", "MODE", false, "optional or required: whether the metadata service"
	  " also answers requests without an IMDSv2 token" },
	{ "--traffic-quota", "SIZE", false, "bytes in + out per month, e.g. 100G (none: no quota);"
	  " then the NICs are throttled (admin)" },
	{ 0 },
};

static const struct opt_spec vm_stop_opts[] = {
	{ "--force", NULL, false, "no ACPI shutdown: quit QEMU at once (then SIGKILL)" },
	{ 0 },
};

static const struct opt_spec vm_log_opts[] = {
	{ "--tail", "BYTES", false, "only the last BYTES of the log" },
	{ 0 },
};

static const struct opt_spec vm_wait_opts[] = {
	{ "--state", "STATE", false, "stopped, starting, running, stopping or error" },
	{ "--gone", NULL, false, "wait until the VM no longer exists" },
	{ "--timeout", "SEC", false, "give up (exit 1) after SEC seconds (default 300)" },
	{ 0 },
};

static const struct opt_spec vm_nic_opts[] = {
	{ "--rate", "SPEC", false, "add, set: the NIC's own limits, RATE[:BURST] or IN/OUT (in = to the"
	  " VM), e.g. 20mbit/10mbit; none = the network's default" },
	{ 0 },
};

static const struct opt_spec usage_opts[] = {
	{ "--user", "USER", false, "only this user's VMs (members: only their own anyway)" },
	{ "--month", "YYYY-MM", false, "that month (UTC; default: this one)" },
	{ 0 },
};

static const struct opt_spec vm_rule_opts[] = {
	{ "--proto", "P", false, "tcp, udp, icmp or any (default tcp with --port, else any)" },
	{ "--port", "N[-M]", false, "a port or a port range (tcp/udp)" },
	{ "--source", "PREFIX", false, "only from this IPv4/IPv6 prefix (default anywhere)" },
	{ 0 },
};

static const struct opt_spec vm_prefix_opts[] = {
	{ "--length", "N", false, "prefix length, 16..64 (default: the daemon's prefix_length, 64)" },
	{ "--nic", "MAC", false, "the NIC it is routed to (default the first)" },
	{ 0 },
};

static const struct opt_spec ip_attach_opts[] = {
	{ "--nic", "MAC", false, "the NIC whose IPv4 address it maps to (default the first with one)" },
	{ 0 },
};

static const struct opt_spec user_create_opts[] = {
	{ "--role", "ROLE", false, "admin or member (default member)" },
	{ "--auth", "BACKEND", true, "file, ldap or otp (repeatable: file + otp)" },
	{ "--password-stdin", NULL, false, "read the password from standard input" },
	{ 0 },
};

static const struct opt_spec user_set_opts[] = {
	{ "--role", "ROLE", false, "admin or member" },
	{ "--auth", "BACKEND", true, "replace the backends: file, ldap, otp (repeatable)" },
	{ "--enable", NULL, false, "allow the user to log in" },
	{ "--disable", NULL, false, "refuse the user's logins and tokens" },
	{ "--quota-vms", "N", false, "at most N VMs (N, unlimited or default: the config's)" },
	{ "--quota-vcpus", "N", false, "at most N vCPUs over all VMs" },
	{ "--quota-memory", "MIB", false, "at most MIB MiB of memory over all VMs" },
	{ "--quota-disk", "SIZE", false, "at most SIZE of VM disks, as sized (e.g. 200G)" },
	{ "--quota-networks", "N", false, "at most N networks" },
	{ "--quota-images", "N", false, "at most N images" },
	{ "--quota-image-bytes", "SIZE", false, "at most SIZE of images" },
	{ "--rate-cap", "RATE", false, "no NIC of the user faster than RATE, e.g. 100mbit (none: no cap)" },
	{ "--traffic-quota", "SIZE", false, "bytes in + out per month over all the user's VMs,"
	  " e.g. 1T (none: no quota); then their NICs are throttled" },
	{ 0 },
};

static const struct opt_spec password_opts[] = {
	{ "--password-stdin", NULL, false, "read the password from standard input" },
	{ 0 },
};

static const struct opt_spec login_opts[] = {
	{ "--password-stdin", NULL, false, "read the password from standard input" },
	{ "--otp", "CODE", false, "the one-time code (else asked for when needed)" },
	{ "--otp-only", NULL, false, "the user logs in with a one-time code alone" },
	{ 0 },
};

static const struct opt_spec host_drain_opts[] = {
	{ "--undo", NULL, false, "take new VMs again" },
	{ "--migrate", NULL, false, "and move its running VMs away live, reporting progress" },
	{ "--parallel", "N", false, "with --migrate: VMs moved at once (default 1, at most 16)" },
	{ "--no-wait", NULL, false, "with --migrate: do not follow the progress" },
	{ 0 },
};

static const struct opt_spec vm_migrate_opts[] = {
	{ "--host", "HOST", false, "the destination (default: the scheduler picks one)" },
	{ "--no-wait", NULL, false, "only ask; do not follow the migration to its end" },
	{ "--timeout", "SEC", false, "give up following after SEC seconds (default 1800)" },
	{ 0 },
};

static const struct opt_spec audit_opts[] = {
	{ "--user", "USER", false, "only this user's requests" },
	{ "--since", "T", false, "from T on: unix seconds, an age (90m, 2h, 7d) or a UTC date"
	  " (2026-12-01[T08:30])" },
	{ "--limit", "N", false, "the newest N entries (default 100, at most 10000)" },
	{ 0 },
};

static const struct command commands[] = {
	{ "info", NULL, cmd_info, "", "show the daemon's version, host and accelerator",
	  0, 0, NULL, NULL },

	{ "image", "import", cmd_image_import,
	  "NAME (--kernel F [--initrd F] [--cmdline S] | --disk F | --url URL [--sha256 HEX]) [--public]",
	  "upload files, or have hcd download a disk, as a new image", 1, 1, import_opts, &res_image },
	{ "image", "build", cmd_image_build,
	  "NAME --recipe tiny|debian [--suite S] [--packages P1,P2] [--mirror URL] [--size SIZE] [--public]",
	  "build an image on this machine with a recipe, then import it", 1, 1, build_opts, &res_image },
	{ "image", "create", cmd_image_create, "NAME --from-vm VM [--public]",
	  "make an image of a stopped VM's root disk (flattened, with its snapshots' data)",
	  1, 1, image_create_opts, &res_image },
	{ "image", "list", cmd_list, "", "list images", 0, 0, NULL, &res_image },
	{ "image", "show", cmd_show, "IMG", "show one image", 1, 1, NULL, &res_image },
	{ "image", "delete", cmd_delete, "IMG", "delete an image no VM uses", 1, 1, NULL, &res_image },

	{ "net", "create", cmd_net_create, "NAME [--ipv6 PREFIX/64] [--ipv4 CIDR|auto] [--rate SPEC]",
	  "create a network", 1, 1, net_create_opts, &res_net },
	{ "net", "list", cmd_list, "", "list networks", 0, 0, NULL, &res_net },
	{ "net", "show", cmd_show, "NET", "show one network", 1, 1, NULL, &res_net },
	{ "net", "delete", cmd_delete, "NET", "delete a network without NICs", 1, 1, NULL, &res_net },
	{ "net", "set", cmd_net_set, "NET --rate SPEC",
	  "change the default limit of a network's NICs", 1, 1, net_set_opts, &res_net },

	{ "key", "add", cmd_key_add, "NAME (--file F | KEYTEXT)",
	  "add an SSH public key", 1, 2, key_add_opts, &res_key },
	{ "key", "list", cmd_list, "", "list SSH keys", 0, 0, NULL, &res_key },
	{ "key", "show", cmd_show, "KEY", "show one SSH key", 1, 1, NULL, &res_key },
	{ "key", "delete", cmd_delete, "KEY", "delete a key no VM uses", 1, 1, NULL, &res_key },

	{ "login", NULL, cmd_login, "USER [--password-stdin] [--otp CODE]",
	  "log in and keep a token for this daemon", 1, 1, login_opts, NULL },
	{ "logout", NULL, cmd_logout, "", "revoke and forget this daemon's token", 0, 0, NULL, NULL },
	{ "whoami", NULL, cmd_whoami, "", "show who the daemon takes you for", 0, 0, NULL, NULL },
	{ "user", "create", cmd_user_create, "NAME [--role ROLE] [--auth BACKEND]... [--password-stdin]",
	  "create a user (admin)", 1, 1, user_create_opts, &res_user },
	{ "user", "list", cmd_list, "", "list users", 0, 0, NULL, &res_user },
	{ "user", "show", cmd_user_show, "USER", "show one user and its usage against its quotas",
	  1, 1, NULL, &res_user },
	{ "user", "set", cmd_user_set,
	  "USER [--role ROLE] [--auth BACKEND]... [--enable|--disable] [QUOTA OPTION N|unlimited|default]..."
	  " [--rate-cap RATE|none] [--traffic-quota SIZE|none]",
	  "change a user, its quotas, rate cap and traffic quota (admin)", 1, 1, user_set_opts, &res_user },
	{ "user", "delete", cmd_delete, "USER", "delete a user who owns nothing (admin)", 1, 1, NULL,
	  &res_user },
	{ "user", "passwd", cmd_user_passwd, "USER [--password-stdin]",
	  "set a user's password (the file backend)", 1, 1, password_opts, &res_user },
	{ "user", "otp", cmd_user_otp, "enable|disable USER",
	  "enrol a TOTP authenticator (prints the otpauth:// URI and a QR code) or remove it",
	  2, 2, NULL, &res_user },
	{ "usage", NULL, cmd_usage, "[--user USER] [--month YYYY-MM]",
	  "what each user and VM used in a month: traffic, vCPU-, memory- and disk-hours",
	  0, 0, usage_opts, NULL },
	{ "host", "list", cmd_list, "", "list hosts: capacity, load, liveness (admin)", 0, 0, NULL,
	  &res_host },
	{ "host", "show", cmd_show, "HOST", "show one host (admin)", 1, 1, NULL, &res_host },
	{ "host", "drain", cmd_host_drain, "HOST [--undo | --migrate [--parallel N] [--no-wait]]",
	  "place no new VMs on a host, or take them again; --migrate: move its VMs away live (admin)",
	  1, 1, host_drain_opts, &res_host },
	{ "events", NULL, cmd_events, "",
	  "follow changes as they happen: VMs created, changed, deleted; hosts (admins)",
	  0, 0, NULL, NULL },
	{ "audit", NULL, cmd_audit, "[--user USER] [--since T] [--limit N]",
	  "show the audit trail of mutating requests (admin)", 0, 0, audit_opts, NULL },
	{ "token", "list", cmd_list, "", "list live login tokens", 0, 0, NULL, &res_token },
	{ "token", "revoke", cmd_delete, "ID", "revoke a token", 1, 1, NULL, &res_token },

	{ "vm", "create", cmd_vm_create,
	  "NAME --image IMG [--net NET[:rate=SPEC]]... [--rate SPEC] [--cpus N] [--memory MIB]"
	  " [--key KEY]... [--user-data FILE] [--config-drive] [--disk-size SIZE] [--disk SIZE]..."
	  " [--no-start] [--metadata-tokens optional|required]",
	  "create a VM, started unless --no-start", 1, 1, vm_create_opts, &res_vm },
	{ "vm", "list", cmd_list, "", "list VMs", 0, 0, NULL, &res_vm },
	{ "vm", "show", cmd_show, "VM", "show one VM and its NICs", 1, 1, NULL, &res_vm },
	{ "vm", "set", cmd_vm_set,
	  "VM [--cpus N] [--memory MIB] [--metadata-tokens optional|required]"
	  " [--traffic-quota SIZE|none]",
	  "change a VM's size or settings", 1, 1, vm_set_opts, &res_vm },
	{ "vm", "disk", cmd_vm_disk, "grow VM [DISK] SIZE",
	  "grow a disk (root, the default, or dataN) to SIZE, e.g. 8G; online when it runs",
	  3, 4, NULL, &res_vm },
	{ "vm", "start", cmd_vm_start, "VM", "ask for the VM to run", 1, 1, NULL, &res_vm },
	{ "vm", "stop", cmd_vm_stop, "VM [--force]",
	  "ask for the VM to stop (ACPI, then forced; --force: at once, no ACPI)",
	  1, 1, vm_stop_opts, &res_vm },
	{ "vm", "reboot", cmd_vm_reboot, "VM", "reset a running VM", 1, 1, NULL, &res_vm },
	{ "vm", "migrate", cmd_vm_migrate, "VM [--host HOST] [--no-wait] [--timeout SEC]",
	  "move a running VM to another host while it runs (admin)", 1, 1, vm_migrate_opts, &res_vm },
	{ "vm", "delete", cmd_delete, "VM", "delete a VM and its disks (QEMU is ended at once)", 1, 1, NULL,
	  &res_vm },
	{ "vm", "nic", cmd_vm_nic, "add VM NET [--rate SPEC] | remove VM MAC | set VM MAC --rate SPEC",
	  "attach or detach a NIC (hot-plugged when the VM runs), or change its limits at once",
	  3, 3, vm_nic_opts, &res_vm },
	{ "vm", "stats", cmd_vm_stats, "VM",
	  "traffic of each NIC: limits in force, current rates, this month's and all-time totals",
	  1, 1, NULL, &res_vm },
	{ "vm", "rule", cmd_vm_rule,
	  "add VM [--proto P] [--port N[-M]] [--source PREFIX] | list VM | delete VM ID",
	  "inbound firewall rules of a VM", 2, 3, vm_rule_opts, &res_vm },
	{ "vm", "prefix", cmd_vm_prefix, "add VM [--length N] [--nic MAC] | list VM | remove VM PREFIX",
	  "routed IPv6 prefixes of a VM (from the operator's pool)", 2, 3, vm_prefix_opts, &res_vm },
	{ "vm", "snapshot", cmd_vm_snapshot,
	  "create VM NAME | list VM | restore VM NAME [--discard-newer] | delete VM NAME",
	  "disk snapshots of every disk of a VM: taken stopped or running (crash-consistent);"
	  " restored and deleted stopped", 2, 3, vm_snapshot_opts, &res_vm },
	{ "ip", "attach", cmd_ip_attach, "VM [ADDRESS] [--nic MAC]",
	  "map a public IPv4 address (the next free one by default) to a VM", 1, 2, ip_attach_opts, NULL },
	{ "ip", "detach", cmd_ip_detach, "VM ADDRESS", "remove a VM's public IPv4 address", 2, 2, NULL, NULL },
	{ "ip", "list", cmd_ip_list, "", "list public IPv4 addresses and the VMs they map to", 0, 0, NULL,
	  NULL },
	{ "vm", "log", cmd_vm_log, "VM [--tail BYTES]", "print the serial output captured so far",
	  1, 1, vm_log_opts, &res_vm },
	{ "vm", "console", cmd_vm_console, "VM",
	  "attach to the serial console; detach with Ctrl-]", 1, 1, NULL, &res_vm },
	{ "vm", "wait", cmd_vm_wait, "VM (--state STATE | --gone) [--timeout SEC]",
	  "wait until the VM reaches a state or is gone", 1, 1, vm_wait_opts, &res_vm },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct opt_spec global_opts[] = {
	{ "--url", "URL", false, "hcd to talk to: unix:PATH or http(s)://HOST:PORT (env HC_URL)" },
	{ "--state-dir", "DIR", false, "shortcut for --url unix:DIR/api.sock" },
	{ "--json", NULL, false, "print the API's JSON instead of tables" },
	{ "--help", NULL, false, "show help; works at every level (hc vm --help)" },
	{ "--version", NULL, false, "print hc's version" },
	{ "--help-json", NULL, false, "print the command table as JSON (hc(1) is made from it)" },
	{ 0 },
};

/* ---- errors ------------------------------------------------------------- */

static int record(struct hc *h, int status, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	free(h->err);
	h->err = msg;
	h->status = status;
	return -1;
}

int hc_fail(struct hc *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(h, HC_EXIT_FAIL, fmt, ap);
	va_end(ap);
	return -1;
}

int hc_usage(struct hc *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(h, HC_EXIT_USAGE, fmt, ap);
	va_end(ap);
	return -1;
}

int hc_output_failed(struct hc *h)
{
	int e = errno;

	h->quiet = e == EPIPE;
	return hc_fail(h, "writing the output failed: %s", strerror(e));
}

volatile sig_atomic_t hc_interrupted;

static void on_signal(int sig)
{
	hc_interrupted = 1;
}

void hc_catch_signals(bool on)
{
	struct sigaction sa = { .sa_handler = on ? on_signal : SIG_DFL };
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

void hc_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL); /* a signal cuts it short: the caller just looks again */
}

void hc_clear(struct hc *h)
{
	free(hc_take_error(h));
}

char *hc_take_error(struct hc *h)
{
	char *e = h->err;
	h->err = NULL;
	h->status = HC_EXIT_OK;
	h->quiet = false;
	return e;
}

/* ---- parsed arguments --------------------------------------------------- */

const char *arg_opt_nth(const struct args *a, const char *name, size_t n)
{
	for (size_t i = 0; i < a->n_opts; i++)
		if (strcmp(a->opts[i].spec->name, name) == 0 && n-- == 0)
			return a->opts[i].value;
	return NULL;
}

const char *arg_opt(const struct args *a, const char *name)
{
	const char *last = NULL;

	for (size_t i = 0; i < a->n_opts; i++)
		if (strcmp(a->opts[i].spec->name, name) == 0)
			last = a->opts[i].value;
	return last;
}

bool arg_flag(const struct args *a, const char *name)
{
	return arg_opt(a, name) != NULL;
}

int arg_int(struct hc *h, const struct args *a, const char *name, long lo, long hi, long *out)
{
	const char *s = arg_opt(a, name);
	char *end;
	long v;

	if (s == NULL)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return hc_usage(h, "%s must be an integer in %ld..%ld", name, lo, hi);
	*out = v;
	return 0;
}

/* ---- help --------------------------------------------------------------- */

static void print_usage_line(FILE *f, const struct command *c)
{
	fprintf(f, "hc %s%s%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
		*c->usage ? " " : "", c->usage);
}

static void print_opts(FILE *f, const struct opt_spec *opts)
{
	for (const struct opt_spec *o = opts; o && o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(f, "  %-20s %s\n", left, o->help);
	}
}

/* All commands, or those of one noun. */
static void print_commands(FILE *f, const char *noun)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &commands[i];
		if (noun && strcmp(c->noun, noun) != 0)
			continue;
		fputs("  ", f);
		print_usage_line(f, c);
		fprintf(f, "\n        %s\n", c->summary);
	}
}

static void help_top(FILE *f)
{
	fputs("usage: hc " USAGE "\n\n"
	      "Commands (VM, NET, IMG and KEY are a name or an ID):\n", f);
	print_commands(f, NULL);
	fputs("\nGlobal options (anywhere on the line):\n", f);
	print_opts(f, global_opts);
	fputs("\nDefault URL: " DEFAULT_URL "\n", f);
}

static void help_noun(FILE *f, const char *noun)
{
	fprintf(f, "usage: hc %s VERB [ARGS]...\n\nCommands:\n", noun);
	print_commands(f, noun);
	fprintf(f, "\nRun 'hc %s VERB --help' for a command's options.\n", noun);
}

static void help_command(FILE *f, const struct command *c)
{
	fputs("usage: ", f);
	print_usage_line(f, c);
	fprintf(f, "\n\n%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
	if (c->opts) {
		fputs("\nOptions:\n", f);
		print_opts(f, c->opts);
	}
	fputs("\nGlobal options: --url URL, --state-dir DIR, --json (see hc --help)\n", f);
}

static json_t *opts_json(const struct opt_spec *opts)
{
	json_t *a = json_array();

	for (const struct opt_spec *o = opts; o && o->name; o++)
		json_array_append_new(a, json_pack("{s:s, s:s?, s:b, s:s}", "name", o->name,
						   "metavar", o->metavar, "repeat", o->repeat,
						   "help", o->help));
	return a;
}

/* --help-json: the whole table, for packaging/gendoc.py (hc(1), bash
 * completion) and the docs test. */
static int print_table_json(struct hc *h)
{
	json_t *root = json_object(), *cmds = json_array();

	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &commands[i];
		json_array_append_new(cmds, json_pack("{s:s, s:s?, s:s, s:s, s:i, s:i, s:o}",
			"noun", c->noun, "verb", c->verb, "usage", c->usage, "summary", c->summary,
			"min_args", (int)c->min_args, "max_args", (int)c->max_args,
			"options", opts_json(c->opts)));
	}
	json_object_set_new(root, "version", json_string(HC_VERSION));
	json_object_set_new(root, "usage", json_string(USAGE));
	json_object_set_new(root, "default_url", json_string(DEFAULT_URL));
	json_object_set_new(root, "global_options", opts_json(global_opts));
	json_object_set_new(root, "commands", cmds);
	if (json_dumpf(root, stdout, JSON_INDENT(1)) < 0 || putchar('\n') == EOF) {
		json_decref(root);
		return hc_output_failed(h);
	}
	json_decref(root);
	return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* What the command line asks for, before any of it is acted on. */
struct invocation {
	const char *url;
	const char *state_dir;
	bool json, help, version, help_json;
	const char *noun;          /* set once seen, for help at the noun level */
	struct args args;
};

static const struct command *find_command(const char *noun, const char *verb)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->noun, noun) == 0 &&
		    (verb == NULL ? c->verb == NULL : c->verb && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

static bool noun_known(const char *noun)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].noun, noun) == 0)
			return true;
	return false;
}

static const struct opt_spec *find_opt(const struct opt_spec *opts, const char *name, size_t len)
{
	for (const struct opt_spec *o = opts; o && o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

static void apply_global(struct invocation *inv, const struct opt_spec *o, const char *value)
{
	if (strcmp(o->name, "--url") == 0)
		inv->url = value;
	else if (strcmp(o->name, "--state-dir") == 0)
		inv->state_dir = value;
	else if (strcmp(o->name, "--json") == 0)
		inv->json = true;
	else if (strcmp(o->name, "--help") == 0)
		inv->help = true;
	else if (strcmp(o->name, "--help-json") == 0)
		inv->help_json = true;
	else
		inv->version = true;
}

/* A word before the command is known: the noun, then the verb (unless the
 * noun is a command by itself). */
static int take_word(struct hc *h, struct invocation *inv, const char *word)
{
	const struct command *c;

	if (inv->noun == NULL) {
		if (!noun_known(word))
			return hc_usage(h, "unknown command '%s' (see 'hc --help')", word);
		inv->noun = word;
		c = find_command(word, NULL);
	} else {
		c = find_command(inv->noun, word);
		if (c == NULL)
			return hc_usage(h, "unknown command '%s %s' (see 'hc %s --help')",
					inv->noun, word, inv->noun);
	}
	inv->args.cmd = c;
	return 0;
}

/* One "--name[=value]" token at argv[*i]; consumes its value. */
static int take_option(struct hc *h, struct invocation *inv, int argc, char **argv, int *i)
{
	const char *tok = argv[*i];
	const char *eq = strchr(tok, '=');
	size_t len = eq ? (size_t)(eq - tok) : strlen(tok);
	const struct command *c = inv->args.cmd;
	const struct opt_spec *o = NULL;
	const char *value;
	bool global = false;

	if (strcmp(tok, "-h") == 0) {
		inv->help = true;
		return 0;
	}
	if (c)
		o = find_opt(c->opts, tok, len);
	if (o == NULL) {
		o = find_opt(global_opts, tok, len);
		global = o != NULL;
	}
	if (o == NULL)
		return hc_usage(h, "unknown option '%.*s'%s", (int)len, tok,
				c ? "" : " before the command");
	if (o->metavar == NULL) {
		if (eq)
			return hc_usage(h, "%s takes no value", o->name);
		value = "";
	} else if (eq) {
		value = eq + 1;
	} else if (*i + 1 < argc) {
		value = argv[++*i];
	} else {
		return hc_usage(h, "%s needs a value (%s)", o->name, o->metavar);
	}
	if (global) {
		apply_global(inv, o, value);
		return 0;
	}
	if (!o->repeat && arg_opt(&inv->args, o->name))
		return hc_usage(h, "%s given twice", o->name);
	inv->args.opts[inv->args.n_opts].spec = o;
	inv->args.opts[inv->args.n_opts].value = value;
	inv->args.n_opts++;
	return 0;
}

static bool is_option(const char *tok)
{
	return tok[0] == '-' && tok[1] != '\0';
}

static int parse(struct hc *h, int argc, char **argv, struct invocation *inv)
{
	bool only_positionals = false;

	/* Each token is at most one positional or one option. */
	inv->args.pos = calloc((size_t)argc, sizeof(*inv->args.pos));
	inv->args.opts = calloc((size_t)argc, sizeof(*inv->args.opts));
	if (inv->args.pos == NULL || inv->args.opts == NULL)
		return hc_fail(h, "out of memory");

	for (int i = 1; i < argc; i++) {
		const char *tok = argv[i];

		if (!only_positionals && strcmp(tok, "--") == 0) {
			only_positionals = true;
		} else if (!only_positionals && is_option(tok)) {
			if (take_option(h, inv, argc, argv, &i) < 0)
				return -1;
		} else if (inv->args.cmd == NULL) {
			if (take_word(h, inv, tok) < 0)
				return -1;
		} else {
			inv->args.pos[inv->args.n_pos++] = tok;
		}
	}
	return 0;
}

/* Arity, once the whole line is read. */
static int check_args(struct hc *h, const struct args *a)
{
	const struct command *c = a->cmd;
	char name[64];

	snprintf(name, sizeof(name), "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
	if (a->n_pos > c->max_args)
		return hc_usage(h, "%s: unexpected argument '%s' (see 'hc %s --help')", name,
				a->pos[c->max_args], name);
	if (a->n_pos < c->min_args)
		return hc_usage(h, "%s: missing argument (usage: hc %s %s)", name, name, c->usage);
	return 0;
}

/* --url, else --state-dir, else $HC_URL, else the default socket. */
static char *target_url(struct hc *h, const struct invocation *inv)
{
	const char *env = getenv("HC_URL");

	if (inv->url && inv->state_dir) {
		hc_usage(h, "--url and --state-dir name the daemon twice; give one");
		return NULL;
	}
	if (inv->state_dir)
		return str_printf("unix:%s/api.sock", inv->state_dir);
	if (inv->url)
		return strdup(inv->url);
	return strdup(env && *env ? env : DEFAULT_URL);
}

/* Help for the deepest level the line named; 0 when help was printed. */
static int print_help(struct hc *h, const struct invocation *inv)
{
	if (inv->args.cmd)
		help_command(stdout, inv->args.cmd);
	else if (inv->noun)
		help_noun(stdout, inv->noun);
	else
		help_top(stdout);
	return 0;
}

/* Whether --help appears before any "--": looked for first, so that a
 * line with a mistake in it still gets help instead of the error. */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int run(struct hc *h, int argc, char **argv, struct invocation *inv)
{
	char *url, *err = NULL;
	int rc;

	inv->help = wants_help(argc, argv);
	if (parse(h, argc, argv, inv) < 0) {
		/* "hc vm frob --help" still deserves the noun's help. */
		if (!inv->help || h->status != HC_EXIT_USAGE)
			return -1;
		hc_clear(h);
	}
	if (inv->help)
		return print_help(h, inv);
	if (inv->help_json)
		return print_table_json(h);
	if (inv->version) {
		printf("hc %s\n", HC_VERSION);
		return 0;
	}
	if (inv->noun == NULL)
		return hc_usage(h, "missing command (see 'hc --help')");
	if (inv->args.cmd == NULL)
		return hc_usage(h, "%s: missing verb (see 'hc %s --help')", inv->noun, inv->noun);
	if (check_args(h, &inv->args) < 0)
		return -1;
	h->json = inv->json;
	url = target_url(h, inv);
	if (url == NULL)
		return h->err ? -1 : hc_fail(h, "out of memory");
	h->cl = client_new(url, &err);
	free(url);
	if (h->cl == NULL) {
		hc_usage(h, "%s", err ? err : "out of memory");
		free(err);
		return -1;
	}
	rc = inv->args.cmd->run(h, &inv->args);
	client_free(h->cl);
	h->cl = NULL;
	return rc;
}

int main(int argc, char **argv)
{
	struct hc h = { 0 };
	struct invocation inv = { 0 };
	int rc;

	/* A closed pipe or peer is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("hc: cannot initialise libcurl\n", stderr);
		return HC_EXIT_FAIL;
	}
	rc = run(&h, argc, argv, &inv);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = hc_output_failed(&h);
	if (rc < 0 && !h.quiet)
		fprintf(stderr, "hc: %s\n", h.err ? h.err : "out of memory");
	free(inv.args.pos);
	free(inv.args.opts);
	free(h.err);
	curl_global_cleanup();
	return rc < 0 ? (h.status ? h.status : HC_EXIT_FAIL) : HC_EXIT_OK;
}
