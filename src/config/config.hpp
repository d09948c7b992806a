// The immutable configuration of a mailward process, loaded from one TOML file (or the embedded
// defaults when no file is given). Key names are the interface contract of docs/design.md; every
// key and its default is documented in docs/config.md. Loading validates everything and reports the
// first problem naming the file, the line and the key.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.hpp"
#include "common/result.hpp"

namespace mailward::config {

using common::Duration;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// A listen address "127.0.0.1:2525" or "[::1]:2525". host is an IP address literal in its
// canonical spelling (RFC 5952 for IPv6), without brackets.
struct Endpoint {
    std::string host;
    unsigned short port = 0;
    std::string to_string() const;  // "127.0.0.1:2525", "[::1]:2525"
};

// An address range "127.0.0.0/8", "::1/128" or a bare address (host route, /32 or /128).
// An IPv4 address a.b.c.d and its IPv4-mapped form ::ffff:a.b.c.d are treated as the same address
// on both sides: 10.0.0.0/8 contains ::ffff:10.1.2.3, and ::ffff:0:0/96 (or ::/0) contains 10.1.2.3.
struct Network {
    std::string text;                 // as written, for messages
    std::vector<unsigned char> addr;  // 4 or 16 bytes, network order, host bits zero
    unsigned prefix = 0;
    bool contains(const std::vector<unsigned char>& ip) const;  // ip: 4 or 16 bytes, else false
};

// "a.b.c.d" or an IPv6 literal (no brackets, no zone) -> 4 or 16 bytes.
std::optional<std::vector<unsigned char>> parse_ip(std::string_view text);

// "a.b.c.d:port", "[v6]:port" (port 1-65535). With default_port != 0 the port may be left out:
// "a.b.c.d", "[v6]" and a bare IPv6 literal then get default_port. Errc::invalid_argument on error.
Result<Endpoint> parse_endpoint(std::string_view text, unsigned short default_port = 0);

// A sender pattern as accounts and trusted_senders list it: "local@domain", "@domain" or "*"
// (allow_any). Returned in lower case; nullopt when malformed (no '@', spaces, controls, empty part).
std::optional<std::string> parse_sender_pattern(std::string_view text, bool allow_any);
// True when address ("local@domain", any case) matches one of patterns (as parse_sender_pattern
// returns them). An empty address (the null reverse-path) matches nothing.
bool sender_allowed(const std::vector<std::string>& patterns, std::string_view address);

// "addr/prefix" or a bare address; host bits beyond the prefix must be zero.
Result<Network> parse_network(std::string_view text);

enum class SenderMode { tls_or_escrow, tls_only, escrow_always, opportunistic };
std::string_view to_string(SenderMode m);
std::optional<SenderMode> parse_sender_mode(std::string_view s);

struct ServerConfig {
    std::string hostname = "localhost";      // EHLO name, Received header, bounces
    std::filesystem::path data_dir = "var";  // default relative to the cwd; see load() for the file
    std::string log_level = "info";
    // The unprivileged system user `serve` runs as once it has bound its ports and read its keys
    // (when started as root). Never empty and never root (checked at load and at start).
    std::string user = "mailward";
    // SIGTERM drains (docs/operations.md "Reload and shutdown"): deliveries and submission sessions
    // in progress get this long to finish; what still runs then is abandoned (retried at the next start).
    Duration shutdown_timeout = seconds(30);
};

struct SubmissionConfig {
    std::vector<Endpoint> listen{{"127.0.0.1", 2525}};
    std::vector<Endpoint> tls_listen;  // implicit TLS (RFC 8314); empty = none
    std::filesystem::path cert;        // empty = self-signed in data_dir, made on first start
    std::filesystem::path key;
    std::vector<Network> trusted_networks;            // defaults() sets 127.0.0.0/8 and ::1/128
    std::size_t max_message_size = 50 * 1024 * 1024;  // octets, announced in EHLO SIZE
    std::size_t max_recipients = 1000;
    std::size_t max_bad_commands = 20;  // then 421 and close
    std::size_t max_connections = 1000;
    std::size_t max_connections_per_ip = 100;
    Duration command_timeout = minutes(5);  // RFC 5321 4.5.3.2.7 server timeout
    Duration data_timeout = minutes(10);    // whole DATA phase
    // Abuse limits (docs/config.md "Abuse limits"): the per-IP limit, AUTH failures and stress
    // eviction count a client by its network: the address cut to ipv4_prefix / ipv6_prefix bits.
    unsigned ipv4_prefix = 32;
    unsigned ipv6_prefix = 64;
    std::size_t max_junk_commands = 20;    // NOOP/RSET/HELP/VRFY/EHLO/HELO/STARTTLS before AUTH
    Duration max_session_time = hours(1);  // whole connection, then 421
    std::size_t max_auth_failures = 10;    // per client network within auth_failure_window
    Duration auth_failure_window = minutes(10);
    Duration stress_command_timeout = seconds(10);  // idle timeout when the table is 80% full
    std::size_t max_hops = 50;                      // Received: fields, more = 554 5.4.6
    // Sender binding (like Postfix's smtpd_sender_login_maps): an account may use only the
    // addresses and @domains it lists, or its login name when it lists none.
    bool sender_login_match = true;
    std::vector<std::string> trusted_senders{"*"};  // for unauthenticated trusted_networks clients
    // AUTH is offered only after STARTTLS or on tls_listen; there is no key to change that.
};

struct DnsConfig {
    std::vector<Endpoint> servers;            // empty = system resolver (/etc/resolv.conf)
    std::filesystem::path trust_anchor_file;  // empty = built-in root anchor
    Duration timeout = seconds(10);
};

// [[delivery.routes]] (Postfix's transport_maps and relayhost as the model; routes.cpp): where mail
// for some recipient domains goes instead of their MX hosts.
struct RouteConfig {
    std::string name;                  // in logs, queue show and simulate; default: next_hop as written
    std::vector<std::string> domains;  // "example.com" (exactly), ".example.com" (its subdomains), "*" (any)
    std::string next_hop;              // as written: "[host]:port" (no MX lookup) or "host:port" (MX of host)
    std::string host;                  // lower case; in brackets: a name or an IP literal
    unsigned short port = 25;
    bool mx_lookup = true;  // host:port: the MX records of host; [host]:port: host's own addresses
    std::string tls;        // the route's floor (a level name), "" for none; at least verify with auth
    std::string auth_user;  // SASL PLAIN/LOGIN to the next hop, only inside TLS; "" for none
    std::filesystem::path auth_password_file;  // its first line is the password (readable by root/mailward only)
    std::string bind_address;                  // local IPv4 address of its connections; "" = [delivery] bind_address
    std::string bind_address6;                 // local IPv6 address; "" = [delivery] bind_address6
    bool operator==(const RouteConfig&) const = default;
};
// The route of a recipient domain (lower case): an exact pattern first, then the longest
// ".suffix" matching a subdomain, then "*"; nullptr when no route applies (the domain's MX).
const RouteConfig* find_route(const std::vector<RouteConfig>& routes, std::string_view domain);
// Parses a next_hop: "[host]:port", "[host]", "host:port" or "host" (port 25 when left out).
// false when it is none of these (host a domain name, or in brackets also an IP literal).
bool parse_next_hop(std::string_view text, RouteConfig& out);

struct DeliveryConfig {
    unsigned short port = 25;
    std::filesystem::path ca_file;  // extra trust anchors for verify
    std::vector<Duration> retry_schedule{minutes(1), minutes(5), minutes(15), hours(1)};
    Duration max_queue_lifetime = hours(24 * 5);
    // A recipient still queued this long after receipt gets one delay notification (RFC 3464
    // Action: delayed) when its NOTIFY allows; 0 sends none.
    Duration delay_warning_time = hours(4);
    // The local address outbound connections are made from (Postfix's smtp_bind_address and
    // smtp_bind_address6), by the destination's family; "" = the system's choice.
    std::string bind_address;
    std::string bind_address6;
    std::size_t max_concurrency = 100;
    std::size_t max_per_destination = 10;
    Duration connect_timeout = seconds(30);
    Duration greeting_timeout = minutes(5);  // RFC 5321 4.5.3.2
    Duration command_timeout = minutes(5);
    Duration data_init_timeout = minutes(2);
    Duration data_block_timeout = minutes(3);
    Duration data_done_timeout = minutes(10);
    // Loop protection: an MX (or address literal) on loopback (127.0.0.0/8, ::1, 0.0.0.0/8, ::) is a
    // permanent routing error (5.4.6) unless this is true (test labs). Our own listeners are refused
    // always, whatever this says.
    bool allow_loopback_mx = false;
    std::vector<RouteConfig> routes;  // [[delivery.routes]]
};

struct PolicyConfig {
    SenderMode default_mode = SenderMode::tls_or_escrow;
    Duration escrow_after = hours(1);
    bool mta_sts = true;
    unsigned short mta_sts_port = 443;  // HTTPS port of mta-sts.<domain> (a lab uses a high port)
    bool dane = true;
    // RFC 8689 section 5: "TLS-Required: No" from an unauthenticated trusted-network client is
    // honoured only when this is on (accounts need `user set NAME --allow-tls-optional`).
    bool tls_optional_trusted_networks = false;
    // A preload list (JSON, see src/policy/preload.hpp); empty = none. Loaded at start.
    std::filesystem::path preload_file;
    // The admin's static policy: recipient domain (lower case) -> minimum level, one of
    // none, may, encrypt, verify, dane. TOML: [policy.domains] "example.org" = "verify".
    std::map<std::string, std::string> domains;
};

struct EscrowConfig {
    std::string listen = "127.0.0.1:8443";  // a valid endpoint, canonical; parse_endpoint() it
    std::string url = "https://localhost:8443";
    std::filesystem::path cert;
    std::filesystem::path key;
    std::filesystem::path master_key_file;  // empty = data_dir/master.key, made 0600 on first start
    Duration expiry = hours(24 * 30);
    // The sender modes whose senders get a short notice when a message of theirs is escrowed
    // (escrow/sender_notice.hpp). escrow-always senders chose escrow: no notice by default.
    std::vector<std::string> notify_sender{"tls-or-escrow"};
    // One-time codes (docs/operations.md "One-time codes"): the first lockout after 10 wrong codes
    // in a row; each further one twice as long, at most code_lockout_max; after code_max_failures
    // wrong codes over a message's life, 6-digit codes are void (only long codes are sent).
    Duration code_lockout = hours(1);
    Duration code_lockout_max = hours(24);
    std::size_t code_max_failures = 30;
};

// The recipients' portal's HTTP limits (the [escrow] section says where it listens).
struct PortalConfig {
    std::size_t max_connections = 1000;             // open at once, all clients
    std::size_t max_connections_per_address = 16;   // per IPv4 address, per IPv6 /64
    Duration header_timeout = seconds(10);          // a request's header, whole (slowloris)
    Duration body_timeout = seconds(120);           // a request's body, whole
    std::size_t max_form_size = 16 * 1024;          // body of every form but the reply's, octets
    std::size_t max_reply_size = 10 * 1024 * 1024;  // a reply's text + files, octets
    std::size_t replies_per_message = 5;            // per reply_window
    std::size_t replies_per_session = 3;            // per reply_window
    Duration reply_window = hours(1);
    std::size_t max_replies_size = 50 * 1024 * 1024;  // every reply to one message together, octets
};

struct StoreConfig {
    std::string backend = "sqlite";                           // "sqlite" or "postgres"
    std::string dsn;                                          // postgres only
    Duration commit_interval = std::chrono::milliseconds(0);  // extra wait to batch commits
    // This node's name as the owner of delivery leases ("" = server.hostname): several nodes on one
    // PostgreSQL need different names (node_name() below).
    std::string node;
    // How long a delivery lease lasts without renewal; a live node renews its leases every third of
    // it, so a dead node's messages are taken over within lease_time.
    Duration lease_time = std::chrono::minutes(2);
};

// The Prometheus endpoint (GET /metrics over plain HTTP). Empty listen: none (the default).
struct MetricsConfig {
    std::string listen;  // "" or a valid endpoint, canonical ("127.0.0.1:9464")
};

// Local submission by `mailward sendmail` (docs/operations.md "Local programs: sendmail"): an
// AF_UNIX socket of the submission process; the peer's uid (SO_PEERCRED) is the sender's identity.
struct SendmailConfig {
    // Empty = no local socket. The default's directory is made (0755) when serve starts as root.
    std::filesystem::path socket = "/run/mailward/sendmail.sock";
    // Users (besides root and [server] user) who may set another envelope sender with -f.
    std::vector<std::string> trusted_users;
};

// One [[dkim]] entry (docs/config.md): the key mail whose From: domain is domain is signed with.
struct DkimConfig {
    std::string domain;                    // lower case, a host name
    std::string selector;                  // s=, published at selector._domainkey.domain
    std::filesystem::path key_file;        // PEM private key, not readable by group or others
    std::string algorithm = "rsa-sha256";  // or "ed25519-sha256" (RFC 8463)
    bool sign_relayed = true;              // also sign relayed mail, not only mailward's own
    bool operator==(const DkimConfig&) const = default;
};

// How the escrow notice, the one-time code mail and the portal show who sends them
// (docs/config.md "[branding]"): the same name, logo, colour and support contact on all three.
struct BrandingConfig {
    std::string organization;         // "" = server.hostname (organization_name())
    std::filesystem::path logo_file;  // "" = no logo; a PNG or JPEG of at most kMaxLogoSize octets
    std::string color = "#0b3d91";    // the accent colour, "#rrggbb" (lower case)
    std::string support_contact;      // "" = none; an e-mail address or an https:// URL
    std::string language = "en";      // the mails' language: "en" or "de"
};

// The largest logo file [branding] logo_file may name.
inline constexpr std::size_t kMaxLogoSize = 256 * 1024;
// "image/png" or "image/jpeg" by the file's magic bytes; "" for anything else (SVG included: it
// can carry script).
std::string_view logo_content_type(std::string_view bytes);
// Reads a logo file and checks it as the loader does; "" and the bytes in out, or why not.
std::string read_logo(const std::filesystem::path& file, std::string& out);

// [tlsrpt] (RFC 8460 SMTP TLS Reporting, docs/config.md): off by default, since the reports tell
// the recipient domains (and whoever reads their report mailbox) about this host's traffic to them.
struct TlsRptConfig {
    bool enabled = false;      // record TLS outcomes and send the daily reports
    std::string organization;  // organization-name; "" = [server] hostname
    std::string contact;       // contact-info; "" = postmaster@[server] hostname
    std::string from;          // the report mails' From and envelope sender; "" = postmaster@[server] hostname
    unsigned send_hour = 1;    // the UTC hour at which the previous day's reports go out
};

struct Config {
    std::filesystem::path source;  // the file loaded, empty for embedded defaults
    ServerConfig server;
    SubmissionConfig submission;
    DnsConfig dns;
    DeliveryConfig delivery;
    PolicyConfig policy;
    EscrowConfig escrow;
    PortalConfig portal;
    StoreConfig store;
    MetricsConfig metrics;
    SendmailConfig sendmail;
    std::vector<DkimConfig> dkim;  // [[dkim]], in file order; at most one per domain
    BrandingConfig branding;
    TlsRptConfig tlsrpt;
};

// [tlsrpt] with its defaults filled in from [server] hostname.
std::string tlsrpt_organization(const Config& cfg);
std::string tlsrpt_contact(const Config& cfg);
std::string tlsrpt_from(const Config& cfg);

// Problems found while loading: "FILE:LINE: key 'a.b': what is wrong (expected ...)".
// message is the first problem in file order (one line, for stderr); problems holds every problem
// found, in file order (message == problems.front()).
struct ConfigError {
    std::string message;
    std::vector<std::string> problems;
};

// Loads and validates file. Never throws. Relative paths written in the file are resolved against
// the directory of the file (made absolute); source is the absolute path of file.
Result<Config> load(const std::filesystem::path& file, ConfigError& error);

// As load(), but the files the configuration names (certificates, keys, trust anchor) are not
// opened: for a local client such as `mailward sendmail`, run by users who may not read the keys,
// and for a reload after the privilege drop (the part that uses a file says when it cannot read it).
Result<Config> load_without_file_checks(const std::filesystem::path& file, ConfigError& error);

// Parses TOML text (name is used in messages only). Never throws. There is no file directory here,
// so relative paths stay relative (to the process's working directory); source is empty. With
// FileChecks::skip the files the configuration names are not opened (as load_without_file_checks).
enum class FileChecks { open, skip };
Result<Config> parse(std::string_view toml_text, std::string_view name, ConfigError& error,
                     FileChecks files = FileChecks::open);

// The embedded defaults (what `mailward serve` uses without -c). Differs from a value-initialized
// Config only in submission.trusted_networks. Relative paths are relative to the working directory.
Config defaults();

// The organisation the notice, the code mail and the portal name: branding.organization, else
// server.hostname.
std::string organization_name(const Config& cfg);

// The owner name of this node's delivery leases: store.node, else server.hostname.
std::string node_name(const Config& cfg);
// Resolves a path relative to data_dir when it is relative; absolute paths are returned unchanged.
std::filesystem::path in_data_dir(const Config& cfg, const std::filesystem::path& p);

}  // namespace mailward::config
