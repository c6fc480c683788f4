#!/usr/bin/env perl
# check — the API description (docs/openapi.json) against the OpenAPI 3.0
# specification, against hcd's route table, and real answers against it.
#
#   check.pl doc DOC HCD
#       DOC is valid OpenAPI 3.0 (JSON::Validator's OpenAPIv3 class, from
#       Debian's libjson-validator-perl, with the OAS 3.0 schema it ships:
#       no network), holds together (unique operationIds, every {param} of
#       a path declared, x-hackcloud-access on each operation, error
#       answers in the error envelope), and describes exactly the routes
#       of `HCD --print-routes`: the same methods and paths, the same
#       access, a body where the route reads one (or the route is listed
#       in x-hackcloud-not-described, with a reason).  Every difference is
#       named, route by route.
#
#   check.pl responses DOC TRACE...
#       Every exchange recorded in the TRACE files (JSON lines of
#       {method, path, request, status, type, body}: tests/e2e/lib.sh's
#       api helper and hc with HC_TRACE write them) was answered as DOC
#       says: the status is one the operation lists, the Content-Type one
#       of its, and a JSON body valid against its schema.  Answer objects
#       are checked closed (no member the document does not name), though
#       the document leaves them open for clients.  And a request hcd
#       accepted (2xx) was valid as DOC describes requests: the document
#       does not refuse what hcd takes.  OPENAPI_COVERAGE=1 also
#       prints which operations and statuses the traces exercised.
#
# Exits 0 when all is well, 1 with one line per problem otherwise.
use strict;
use warnings;

use JSON::Validator::Schema::OpenAPIv3;
use Mojo::File qw(path);
use Mojo::JSON qw(decode_json encode_json);
use Mojo::Util;
use Storable qw(dclone);

my @problems;
sub problem { push @problems, join('', @_) }
my %answered;    # "METHOD /template" -> {status -> count}: what the traces exercised

sub load_doc {
	my ($file) = @_;
	my $doc = eval { decode_json(path($file)->slurp) };
	die "$file: not JSON: $@" unless ref $doc eq 'HASH';
	return $doc;
}

# "/v1/vms/{vm}/nics/{nic}" -> "/v1/vms/{}/nics/{}": the route table's spelling.
sub table_path { my $p = shift; $p =~ s/\{[^}\/]+\}/{}/g; return $p }

sub deref {
	my ($doc, $obj) = @_;
	while (ref $obj eq 'HASH' && exists $obj->{'$ref'}) {
		my $ptr = $obj->{'$ref'};
		die "unsupported \$ref $ptr" unless $ptr =~ s{^#/}{};
		$obj = $doc;
		$obj = $obj->{ s/~1/\//gr =~ s/~0/~/gr } for split m{/}, $ptr;
		die "dangling \$ref #/$ptr" unless defined $obj;
	}
	return $obj;
}

my @METHODS = qw(get put post delete options head patch trace);

# [method, path template, operation] of every operation in the document.
sub operations {
	my ($doc) = @_;
	my @ops;
	for my $p (sort keys %{ $doc->{paths} }) {
		my $item = $doc->{paths}{$p};
		for my $m (@METHODS) {
			push @ops, [uc $m, $p, $item->{$m}] if $item->{$m};
		}
	}
	return @ops;
}

# ---- doc ----------------------------------------------------------------

sub check_spec {
	my ($doc) = @_;
	my $schema = eval { JSON::Validator::Schema::OpenAPIv3->new(dclone $doc) };
	return problem("the document cannot be loaded: $@") unless $schema;
	problem("not OpenAPI 3.0: $_") for @{ $schema->errors };
	problem("openapi is '$doc->{openapi}', want 3.0.x") unless ($doc->{openapi} // '') =~ /^3\.0\.\d+$/;
}

sub check_coherence {
	my ($doc) = @_;
	my %ids;
	for my $o (operations($doc)) {
		my ($m, $p, $op) = @$o;
		my $what = "$m $p";
		my $id = $op->{operationId} // '';
		problem("$what: no operationId") unless $id;
		problem("$what: operationId '$id' also names $ids{$id}") if $id && $ids{$id};
		$ids{$id} = $what;

		my $access = $op->{'x-hackcloud-access'} // '';
		problem("$what: x-hackcloud-access is '$access', want user, admin, anon or metrics")
			unless $access =~ /^(user|admin|anon|metrics)$/;
		my $anon_sec = ref $op->{security} eq 'ARRAY' && !@{ $op->{security} };
		problem("$what: an anon operation needs security: [] (and only it)") if ($access eq 'anon') != $anon_sec;

		# Path parameters: declared at the path or the operation, each used.
		my %declared;
		for my $prm (@{ $doc->{paths}{$p}{parameters} || [] }, @{ $op->{parameters} || [] }) {
			my $d = eval { deref($doc, $prm) } or do { problem("$what: $@"); next };
			$declared{ $d->{name} } = 1 if $d->{in} eq 'path';
		}
		my %in_path = map { $_ => 1 } $p =~ /\{([^}]+)\}/g;
		problem("$what: {$_} has no path parameter") for grep { !$declared{$_} } sort keys %in_path;
		problem("$what: path parameter '$_' is not in the path") for grep { !$in_path{$_} } sort keys %declared;

		my $rs = $op->{responses} || {};
		problem("$what: no success answer") unless grep { /^(1|2)\d\d$/ } keys %$rs;
		for my $st (sort keys %$rs) {
			next if $st !~ /^\d+$/ || $st < 400;
			my $r = eval { deref($doc, $rs->{$st}) } or do { problem("$what $st: $@"); next };
			my $s = $r->{content}{'application/json'}{schema};
			my $codes = eval { $s->{allOf}[1]{properties}{error}{properties}{code}{enum} };
			problem("$what $st: not the error envelope with its codes (allOf [Error, {error.code enum}])")
				unless $s && ($s->{allOf}[0]{'$ref'} // '') eq '#/components/schemas/Error'
				&& ref $codes eq 'ARRAY' && @$codes;
		}
	}
}

sub check_routes {
	my ($doc, $hcd) = @_;
	my $out = qx{"$hcd" --print-routes};
	return problem("$hcd --print-routes failed (status $?)") if $? != 0;
	my $routes = decode_json($out);
	my %table = map { ("$_->{method} $_->{path}" => $_) } @$routes;
	my %described;
	for my $o (operations($doc)) {
		my ($m, $p, $op) = @$o;
		my $key = "$m " . table_path($p);
		$described{$key} = 1;
		my $rt = $table{$key};
		unless ($rt) {
			problem("extra: $m $p is described in the document but is not in the route table");
			next;
		}
		my $access = $op->{'x-hackcloud-access'} // '';
		problem("access: $m $p is '$rt->{access}' in the route table, '$access' in the document")
			if $access ne $rt->{access};
		my $content = ($op->{requestBody} && $op->{requestBody}{content}) || {};
		my $want = { none => undef, json => 'application/json', stream => 'application/octet-stream' }->{ $rt->{body} };
		if (!defined $want) {
			problem("body: $m $p reads no body, but the document gives it a requestBody") if %$content;
		} elsif (!$content->{$want}) {
			problem("body: $m $p reads a $rt->{body} body, but the document has no $want requestBody");
		}
	}
	# Routes the document says it leaves out, and why (docs/openapi.py NOT_DESCRIBED).
	for my $nd (@{ $doc->{'x-hackcloud-not-described'} || [] }) {
		my $key = "$nd->{method} $nd->{path}";
		problem("extra: $key is listed as not described, but is not in the route table") unless $table{$key};
		problem("$key: listed as not described, and described too") if $described{$key};
		problem("$key: listed as not described without a reason") unless $nd->{why};
		$described{$key} = 1;
	}
	for my $rt (@$routes) {
		my $key = "$rt->{method} $rt->{path}";
		problem("missing: $key (access $rt->{access}, body $rt->{body}, serves ", $rt->{serves} // 'api',
			") is in the route table but not in the document")
			unless $described{$key};
	}
	return scalar @$routes;
}

# ---- responses ------------------------------------------------------------

# The document as the response check reads it: shared responses inlined
# (JSON::Validator does not follow a $ref in place of a response) and every
# named object closed.
sub strict_doc {
	my ($doc) = @_;
	my $d = dclone $doc;
	for my $o (operations($d)) {
		my $rs = $o->[2]{responses};
		$rs->{$_} = dclone deref($d, $rs->{$_}) for keys %$rs;
		for my $ps ($d->{paths}{ $o->[1] }{parameters}, $o->[2]{parameters}) {
			@$ps = map { dclone deref($d, $_) } @$ps if $ps;
		}
	}
	my $close;
	$close = sub {
		my ($s) = @_;
		return unless ref $s eq 'HASH';
		if ($s->{properties} && !exists $s->{additionalProperties}) {
			$s->{additionalProperties} = Mojo::JSON::false;
		}
		$close->($_) for values %{ $s->{properties} || {} };
		$close->($s->{items});
		$close->($_) for @{ $s->{oneOf} || [] }, @{ $s->{anyOf} || [] };
	};
	$close->($_) for values %{ $d->{components}{schemas} };
	return $d;
}

# The operation a request reached: [template, operation or undef], or ().
sub find_route {
	my ($doc, $method, $url) = @_;
	(my $p = $url) =~ s/\?.*//s;
	$p =~ s{(.)/$}{$1};    # hcd tolerates one trailing slash
	my @segs = split m{/}, $p, -1;
	my ($best, $best_lit);
	for my $t (keys %{ $doc->{paths} }) {
		my @ts = split m{/}, $t, -1;
		next unless @ts == @segs;
		my ($ok, $lit) = (1, 0);
		for my $i (0 .. $#ts) {
			if ($ts[$i] =~ /^\{[^}]+\}$/) {
				$ok = 0 if $segs[$i] eq '';
			} elsif ($ts[$i] eq $segs[$i]) {
				$lit++;
			} else {
				$ok = 0;
			}
			last unless $ok;
		}
		($best, $best_lit) = ($t, $lit) if $ok && (!defined $best || $lit > $best_lit);
	}
	return () unless defined $best;
	return ($best, $doc->{paths}{$best}{ lc $method });
}

# Answers no route gives: an unknown path or method, or a caller refused first.
my %UNROUTED = (401 => [qw(unauthorized)], 403 => [qw(forbidden)], 404 => [qw(not_found)],
	405 => [qw(method_not_allowed)], 429 => [qw(rate_limited)]);

sub check_exchange {
	my ($schema, $doc, $x, $where) = @_;
	my ($m, $url, $st) = ($x->{method}, $x->{path}, $x->{status});
	my $what = "$where: $m $url -> $st";
	(my $type = $x->{type} // '') =~ s/\s*;.*//s;
	my $body;
	if (defined $x->{body} && $type eq 'application/json') {
		$body = eval { decode_json($x->{body}) };
		return problem("$what: the body is not JSON: ", substr($x->{body}, 0, 200)) if $@;
	}
	my ($tmpl, $op) = find_route($doc, $m, $url);
	$answered{"$m $tmpl"}{$st}++ if $op;
	if (!$op) {
		my $codes = $UNROUTED{$st};
		return problem("$what: no operation is described for this request") unless $codes;
		my $code = ref $body eq 'HASH' && ref $body->{error} eq 'HASH' ? $body->{error}{code} // '' : '';
		problem("$what: an error envelope with code ", join('|', @$codes), " wanted, got ",
			substr(encode_json($body), 0, 200)) unless grep { $_ eq $code } @$codes;
		return;
	}
	my $r = $op->{responses}{$st} || $op->{responses}{default};
	return problem("$what: status $st is not among those of $m $tmpl (",
		join(' ', sort keys %{ $op->{responses} }), ")") unless $r;
	my $content = $r->{content} || {};
	return unless %$content || $type;
	return problem("$what: Content-Type '$type' is not one of ", join(', ', sort keys %$content))
		unless $content->{$type};
	# (A trace without "request" recorded none: an older hc's.)
	check_request($schema, $x, $tmpl, $op, $what) if $st =~ /^2/ && exists $x->{request};
	return unless defined $body;
	my @errors = $schema->validate_response([lc $m, $tmpl, $st],
		{ body => sub { { exists => 1, value => $body, content_type => $type } } });
	problem("$what: $_") for @errors;
	problem("$what: the body was ", substr($x->{body}, 0, 300) =~ s/\s+\z//r) if @errors;
}

# An accepted request against the operation's parameters and JSON body.
sub check_request {
	my ($schema, $x, $tmpl, $op, $what) = @_;
	my ($p, $q) = split /\?/, $x->{path}, 2;
	$p =~ s{(.)/$}{$1};
	my (%path, %query);
	my @ts = split m{/}, $tmpl, -1;
	my @ss = split m{/}, $p, -1;
	for my $i (0 .. $#ts) {
		$path{$1} = Mojo::Util::url_unescape($ss[$i]) if $ts[$i] =~ /^\{([^}]+)\}$/;
	}
	# Query values are text: a number where the parameter is one (the
	# validator's own coercion is off, for the bodies' sake).
	my %qtype = map { ($_->{name} => $_->{schema}{type} // '') } grep { $_->{in} eq 'query' }
		@{ $op->{parameters} || [] };
	for my $kv (split /&/, $q // '') {
		my ($k, $v) = map { Mojo::Util::url_unescape($_ // '') } split /=/, $kv, 2;
		$v = 0 + $v if ($qtype{$k} // '') =~ /^(integer|number)$/ && $v =~ /^-?\d+(\.\d+)?$/;
		$query{$k} = $v;
	}
	my $content = ($op->{requestBody} && $op->{requestBody}{content}) || {};
	my $req = { path => \%path, query => \%query, header => {} };
	# A JSON body hc or the test sent (an empty one reads as {}); the
	# bytes of others (uploads) are not recorded: any is as described.
	if ($content->{'application/json'}) {
		$req->{body} = sub { { exists => 1, value => $x->{request} // {}, content_type => 'application/json' } };
	} elsif (my ($type) = sort keys %$content) {
		$req->{body} = sub { { exists => 1, value => '', content_type => $type } };
	}
	my @errors = $schema->validate_request([lc $x->{method}, $tmpl], $req);
	problem("$what: accepted, yet the request is not as described: $_") for @errors;
	problem("$what: the request was ", encode_json($x->{request})) if @errors && $x->{request};
}

sub check_responses {
	my ($doc, @traces) = @_;
	my $strict = strict_doc($doc);
	my $schema = JSON::Validator::Schema::OpenAPIv3->new($strict);
	$schema->coerce({});   # a "1" is no integer, a 0 no boolean
	my $n = 0;
	for my $file (@traces) {
		next unless -e $file;
		my $ln = 0;
		for my $line (split /\n/, path($file)->slurp) {
			$ln++;
			next unless $line =~ /\S/;
			my $x = eval { decode_json($line) };
			if (!$x) { problem("$file:$ln: not a JSON line"); next }
			check_exchange($schema, $strict, $x, "$file:$ln");
			$n++;
		}
	}
	return $n;
}

# ---- main ---------------------------------------------------------------

my ($mode, $file, @rest) = @ARGV;
die "usage: check.pl doc DOC HCD | check.pl responses DOC TRACE...\n"
	unless $mode && $file && ($mode eq 'doc' ? @rest == 1 : $mode eq 'responses');
my $doc = load_doc($file);
my $summary;
if ($mode eq 'doc') {
	check_spec($doc);
	check_coherence($doc);
	my $n = check_routes($doc, $rest[0]) // 0;
	$summary = sprintf "openapi: %d routes in the table, %d operations described", $n,
		scalar(my @o = operations($doc));
} else {
	my $n = check_responses($doc, @rest);
	my @ops = map { "$_->[0] $_->[1]" } operations($doc);
	$summary = sprintf "openapi: %d answers of %d of the %d operations checked against %s", $n,
		scalar(grep { $answered{$_} } @ops), scalar @ops, $file;
	# OPENAPI_COVERAGE=1: which operations and statuses the traces exercised.
	if ($ENV{OPENAPI_COVERAGE}) {
		for my $o (@ops) {
			my $by = $answered{$o} || {};
			printf "%-45s %s\n", $o, join(' ', map { "$_:$by->{$_}" } sort keys %$by) || '-';
		}
	}
}
print STDERR "FAIL: $_\n" for @problems;
print "$summary, ", scalar(@problems), " problems\n";
exit(@problems ? 1 : 0);
