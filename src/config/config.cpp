// Loads the mailward TOML configuration: the schema (every section and key, see docs/config.md),
// the walk over the parsed tree, checks that span several keys, and the files the user must supply.
// Input is an untrusted file; toml++ exceptions are caught here and never leave parse() or load().
#include "config/config.hpp"
#include "config/reload.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "common/ascii.hpp"
#include "common/domain.hpp"
#include "config/branding_detail.hpp"
#include "config/dkim_detail.hpp"
#include "config/reader.hpp"

namespace mailward::config {
namespace {

using detail::Reader;
namespace fs = std::filesystem;

using In = const toml::node&;
using ReadFn = void (*)(Reader&, In, Config&);

struct Key {
    std::string_view name;
    ReadFn read;
};

struct Section {
    std::string_view name;
    std::vector<Key> keys;
};

constexpr std::array<std::string_view, 6> kLogLevels{"trace", "debug", "info", "warn", "error", "off"};
constexpr std::array<std::string_view, 2> kBackends{"sqlite", "postgres"};
constexpr std::array<std::string_view, 2> kLanguages{"en", "de"};
constexpr std::array<std::string_view, 4> kModes{"tls-or-escrow", "tls-only", "escrow-always", "opportunistic"};
constexpr std::size_t kMaxFileSize = 4 * 1024 * 1024;

// Readers for one field, named by pointers to members, e.g.
// count<&Config::submission, &SubmissionConfig::max_recipients>.
template <auto S, auto F>
void count(Reader& r, In n, Config& c) {
    r.read_count(n, (c.*S).*F);
}
template <auto S, auto F, bool AllowZero = false>
void duration(Reader& r, In n, Config& c) {
    r.read_duration(n, (c.*S).*F, AllowZero);
}
template <auto S, auto F>
void path(Reader& r, In n, Config& c) {
    r.read_path(n, (c.*S).*F);
}
template <auto S, auto F, unsigned short DefaultPort = 0>
void endpoints(Reader& r, In n, Config& c) {
    r.read_endpoints(n, (c.*S).*F, DefaultPort);
}
template <auto S, auto F>
void boolean(Reader& r, In n, Config& c) {
    r.read_bool(n, (c.*S).*F);
}

constexpr std::array<std::string_view, 5> kLevels{"none", "may", "encrypt", "verify", "dane"};

// [policy.domains]: "domain" = "level". Domains are stored in lower case; each must be a host name.
void read_static_policy(Reader& r, In n, Config& c) {
    const toml::table* t = n.as_table();
    if (t == nullptr) {
        r.key_problem(
            detail::line_of(n), "policy.domains",
            "wrong type: got " + std::string(detail::type_name(n)) + " (expected a table of \"domain\" = \"level\")");
        return;
    }
    for (auto&& [key, value] : *t) {
        const std::string domain = common::ascii::lower(key.str());
        const std::string full = "policy.domains." + std::string(key.str());
        r.begin_key(full, key.source().begin.line);
        std::string checked;
        toml::value<std::string> as_node(domain);
        if (!r.read_hostname(as_node, checked)) continue;
        std::string level;
        if (r.read_choice(value, level, kLevels)) c.policy.domains[domain] = level;
    }
}

// [[delivery.routes]] (routes.cpp): each a table; every problem names the route's key and line.
void read_routes(Reader& r, In n, Config& c) {
    const toml::array* a = n.as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
        r.key_problem(detail::line_of(n), "delivery.routes",
                      "wrong type: got " + std::string(detail::type_name(n)) +
                          " (expected [[delivery.routes]] tables with domains and next_hop)");
        return;
    }
    static constexpr std::array<std::string_view, 8> kKeys{
        "name", "domains", "next_hop", "tls", "auth_user", "auth_password_file", "bind_address", "bind_address6"};
    static constexpr std::array<std::string_view, 4> kFloors{"may", "encrypt", "verify", "dane"};
    std::map<std::string, std::size_t> seen;  // pattern -> route number
    std::size_t i = 0;
    for (auto&& el : *a) {
        ++i;
        const auto& t = *el.as_table();
        const std::string base = "delivery.routes[" + std::to_string(i) + "]";
        const std::size_t line = detail::line_of(el);
        RouteConfig route;
        bool ok = true;
        for (auto&& [key, value] : t) {
            const std::string full = base + "." + std::string(key.str());
            r.begin_key(full, key.source().begin.line);
            const std::string_view k = key.str();
            if (std::find(kKeys.begin(), kKeys.end(), k) == kKeys.end()) {
                r.key_problem(key.source().begin.line, full,
                              "unknown key (expected name, domains, next_hop, tls, auth_user, auth_password_file, "
                              "bind_address, bind_address6)");
                ok = false;
            } else if (k == "name") {
                ok = r.read_string(value, route.name, "expected a name for logs, e.g. \"smarthost\"") && ok;
            } else if (k == "domains") {
                const toml::array* d = value.as_array();
                if (d == nullptr || d->empty()) {
                    r.key_problem(key.source().begin.line, full,
                                  "expected a non-empty array of \"example.com\", \".example.com\" or \"*\"");
                    ok = false;
                    continue;
                }
                for (auto&& p : *d) {
                    std::string s;
                    if (!r.read_string(p, s, "expected \"example.com\", \".example.com\" or \"*\"")) {
                        ok = false;
                        continue;
                    }
                    s = common::ascii::lower(s);
                    const std::string_view bare = !s.empty() && s.front() == '.' ? std::string_view(s).substr(1) : s;
                    if (s != "*" && !common::DomainName::parse(bare, {.final_dot = false})) {
                        r.key_problem(
                            detail::line_of(p), full,
                            "bad domain pattern \"" + s + "\" (expected \"example.com\", \".example.com\" or \"*\")");
                        ok = false;
                        continue;
                    }
                    if (auto [it, fresh] = seen.emplace(s, i); !fresh) {
                        r.key_problem(
                            detail::line_of(p), full,
                            "\"" + s + "\" is already routed by delivery.routes[" + std::to_string(it->second) + "]");
                        ok = false;
                        continue;
                    }
                    route.domains.push_back(s);
                }
            } else if (k == "next_hop") {
                std::string s;
                if (!r.read_string(value, s, "expected \"[host]:port\" or \"host:port\"")) {
                    ok = false;
                } else if (!parse_next_hop(s, route)) {
                    r.key_problem(detail::line_of(value), full,
                                  "bad next hop \"" + s +
                                      "\" (expected \"[host]:port\" without MX lookup, or \"host:port\" with it)");
                    ok = false;
                }
            } else if (k == "tls") {
                ok = r.read_choice(value, route.tls, kFloors) && ok;
            } else if (k == "auth_user") {
                ok = r.read_string(value, route.auth_user, "expected the SASL user name") && ok;
            } else if (k == "bind_address" || k == "bind_address6") {
                ok = r.read_bind_address(value, k == "bind_address" ? route.bind_address : route.bind_address6,
                                         k == "bind_address6") &&
                     ok;
            } else {
                ok = r.read_path(value, route.auth_password_file) && ok;
            }
        }
        if (!ok) continue;
        r.begin_key(base, line);
        if (route.domains.empty() || route.next_hop.empty()) {
            r.key_problem(line, base, "a route needs domains and next_hop");
            continue;
        }
        if (route.auth_user.empty() != route.auth_password_file.empty()) {
            r.key_problem(line, base, "auth_user and auth_password_file go together");
            continue;
        }
        if (!route.auth_user.empty()) {
            // Credentials only to a next hop that proves who it is: encrypt would hand the
            // password to any interceptor with a certificate of its own.
            if (route.tls.empty()) route.tls = "verify";
            if (route.tls != "verify" && route.tls != "dane") {
                r.key_problem(line, base,
                              "with auth_user, tls must be \"verify\" or \"dane\" (the password goes only to an "
                              "authenticated next hop)");
                continue;
            }
        }
        if (route.name.empty()) route.name = route.next_hop;
        c.delivery.routes.push_back(std::move(route));
    }
}

constexpr auto kServer = &Config::server;
constexpr auto kSubmission = &Config::submission;
constexpr auto kDns = &Config::dns;
constexpr auto kDelivery = &Config::delivery;
constexpr auto kPolicy = &Config::policy;
constexpr auto kEscrow = &Config::escrow;
constexpr auto kPortal = &Config::portal;
constexpr auto kStore = &Config::store;
using Sub = SubmissionConfig;
using Del = DeliveryConfig;

// The schema: TOML key = struct field name, in the order of config.hpp and docs/config.md.
const std::vector<Section>& schema() {
    static const std::vector<Section> sections{
        {"server",
         {
             {"hostname", [](Reader& r, In n, Config& c) { r.read_hostname(n, c.server.hostname); }},
             {"data_dir", path<kServer, &ServerConfig::data_dir>},
             {"log_level", [](Reader& r, In n, Config& c) { r.read_choice(n, c.server.log_level, kLogLevels); }},
             {"user",
              [](Reader& r, In n, Config& c) {
                  r.read_string(n, c.server.user, "expected a system user name, e.g. \"mailward\"");
              }},
             {"shutdown_timeout", duration<kServer, &ServerConfig::shutdown_timeout>},
         }},
        {"submission",
         {
             {"listen", endpoints<kSubmission, &Sub::listen>},
             {"tls_listen", endpoints<kSubmission, &Sub::tls_listen>},
             {"cert", path<kSubmission, &Sub::cert>},
             {"key", path<kSubmission, &Sub::key>},
             {"trusted_networks",
              [](Reader& r, In n, Config& c) { r.read_networks(n, c.submission.trusted_networks); }},
             {"max_message_size", count<kSubmission, &Sub::max_message_size>},
             {"max_recipients", count<kSubmission, &Sub::max_recipients>},
             {"max_bad_commands", count<kSubmission, &Sub::max_bad_commands>},
             {"max_connections", count<kSubmission, &Sub::max_connections>},
             {"max_connections_per_ip", count<kSubmission, &Sub::max_connections_per_ip>},
             {"command_timeout", duration<kSubmission, &Sub::command_timeout>},
             {"data_timeout", duration<kSubmission, &Sub::data_timeout>},
             {"ipv4_prefix", [](Reader& r, In n, Config& c) { r.read_prefix_length(n, c.submission.ipv4_prefix, 32); }},
             {"ipv6_prefix",
              [](Reader& r, In n, Config& c) { r.read_prefix_length(n, c.submission.ipv6_prefix, 128); }},
             {"max_junk_commands", count<kSubmission, &Sub::max_junk_commands>},
             {"max_session_time", duration<kSubmission, &Sub::max_session_time>},
             {"max_auth_failures", count<kSubmission, &Sub::max_auth_failures>},
             {"auth_failure_window", duration<kSubmission, &Sub::auth_failure_window>},
             {"stress_command_timeout", duration<kSubmission, &Sub::stress_command_timeout>},
             {"max_hops", count<kSubmission, &Sub::max_hops>},
             {"sender_login_match", boolean<kSubmission, &Sub::sender_login_match>},
             {"trusted_senders", [](Reader& r, In n, Config& c) { r.read_senders(n, c.submission.trusted_senders); }},
         }},
        {"dns",
         {
             {"servers", endpoints<kDns, &DnsConfig::servers, 53>},
             {"trust_anchor_file", path<kDns, &DnsConfig::trust_anchor_file>},
             {"timeout", duration<kDns, &DnsConfig::timeout>},
         }},
        {"delivery",
         {
             {"port", [](Reader& r, In n, Config& c) { r.read_port(n, c.delivery.port); }},
             {"ca_file", path<kDelivery, &Del::ca_file>},
             {"retry_schedule", [](Reader& r, In n, Config& c) { r.read_durations(n, c.delivery.retry_schedule); }},
             {"max_queue_lifetime", duration<kDelivery, &Del::max_queue_lifetime>},
             {"delay_warning_time", duration<kDelivery, &Del::delay_warning_time, true>},
             {"bind_address",
              [](Reader& r, In n, Config& c) { r.read_bind_address(n, c.delivery.bind_address, false); }},
             {"bind_address6",
              [](Reader& r, In n, Config& c) { r.read_bind_address(n, c.delivery.bind_address6, true); }},
             {"max_concurrency", count<kDelivery, &Del::max_concurrency>},
             {"max_per_destination", count<kDelivery, &Del::max_per_destination>},
             {"connect_timeout", duration<kDelivery, &Del::connect_timeout>},
             {"greeting_timeout", duration<kDelivery, &Del::greeting_timeout>},
             {"command_timeout", duration<kDelivery, &Del::command_timeout>},
             {"data_init_timeout", duration<kDelivery, &Del::data_init_timeout>},
             {"data_block_timeout", duration<kDelivery, &Del::data_block_timeout>},
             {"data_done_timeout", duration<kDelivery, &Del::data_done_timeout>},
             {"allow_loopback_mx", boolean<kDelivery, &Del::allow_loopback_mx>},
             {"routes", read_routes},
         }},
        {"policy",
         {
             {"default_mode",
              [](Reader& r, In n, Config& c) {
                  std::string s;
                  if (r.read_choice(n, s, kModes)) c.policy.default_mode = *parse_sender_mode(s);
              }},
             {"escrow_after", duration<kPolicy, &PolicyConfig::escrow_after, true>},
             {"mta_sts", boolean<kPolicy, &PolicyConfig::mta_sts>},
             {"mta_sts_port", [](Reader& r, In n, Config& c) { r.read_port(n, c.policy.mta_sts_port); }},
             {"dane", boolean<kPolicy, &PolicyConfig::dane>},
             {"tls_optional_trusted_networks", boolean<kPolicy, &PolicyConfig::tls_optional_trusted_networks>},
             {"preload_file", path<kPolicy, &PolicyConfig::preload_file>},
             {"domains", read_static_policy},
         }},
        {"escrow",
         {
             {"listen",
              [](Reader& r, In n, Config& c) {
                  Endpoint ep;
                  if (r.read_endpoint(n, ep, 0)) c.escrow.listen = ep.to_string();
              }},
             {"url", [](Reader& r, In n, Config& c) { r.read_https_url(n, c.escrow.url); }},
             {"cert", path<kEscrow, &EscrowConfig::cert>},
             {"key", path<kEscrow, &EscrowConfig::key>},
             {"master_key_file", path<kEscrow, &EscrowConfig::master_key_file>},
             {"expiry", duration<kEscrow, &EscrowConfig::expiry>},
             {"notify_sender", [](Reader& r, In n, Config& c) { r.read_choices(n, c.escrow.notify_sender, kModes); }},
             {"code_lockout", duration<kEscrow, &EscrowConfig::code_lockout>},
             {"code_lockout_max", duration<kEscrow, &EscrowConfig::code_lockout_max>},
             {"code_max_failures", count<kEscrow, &EscrowConfig::code_max_failures>},
         }},
        {"portal",
         {
             {"max_connections", count<kPortal, &PortalConfig::max_connections>},
             {"max_connections_per_address", count<kPortal, &PortalConfig::max_connections_per_address>},
             {"header_timeout", duration<kPortal, &PortalConfig::header_timeout>},
             {"body_timeout", duration<kPortal, &PortalConfig::body_timeout>},
             {"max_form_size", count<kPortal, &PortalConfig::max_form_size>},
             {"max_reply_size", count<kPortal, &PortalConfig::max_reply_size>},
             {"replies_per_message", count<kPortal, &PortalConfig::replies_per_message>},
             {"replies_per_session", count<kPortal, &PortalConfig::replies_per_session>},
             {"reply_window", duration<kPortal, &PortalConfig::reply_window>},
             {"max_replies_size", count<kPortal, &PortalConfig::max_replies_size>},
         }},
        {"store",
         {
             {"backend", [](Reader& r, In n, Config& c) { r.read_choice(n, c.store.backend, kBackends); }},
             {"dsn", [](Reader& r, In n,
                        Config& c) { r.read_string(n, c.store.dsn, "expected a PostgreSQL connection string"); }},
             {"commit_interval", duration<kStore, &StoreConfig::commit_interval, true>},
             {"node", [](Reader& r, In n, Config& c) { r.read_hostname(n, c.store.node); }},
             {"lease_time", duration<kStore, &StoreConfig::lease_time>},
         }},
        {"metrics",
         {
             {"listen",
              [](Reader& r, In n, Config& c) {
                  Endpoint ep;
                  if (r.read_endpoint(n, ep, 0)) c.metrics.listen = ep.to_string();
              }},
         }},
        {"sendmail",
         {
             {"socket",
              [](Reader& r, In n, Config& c) {
                  // "" turns the local socket off; anything else is a path.
                  if (const auto* v = n.as_string(); v != nullptr && v->get().empty()) {
                      c.sendmail.socket.clear();
                      return;
                  }
                  r.read_path(n, c.sendmail.socket);
              }},
             {"trusted_users", [](Reader& r, In n, Config& c) { r.read_user_names(n, c.sendmail.trusted_users); }},
         }},
        {"branding",
         {
             {"organization", detail::read_organization},
             {"logo_file", path<&Config::branding, &BrandingConfig::logo_file>},
             {"color", detail::read_color},
             {"support_contact", detail::read_support_contact},
             {"language", [](Reader& r, In n, Config& c) { r.read_choice(n, c.branding.language, kLanguages); }},
         }},
        {"tlsrpt",
         {
             {"enabled", [](Reader& r, In n, Config& c) { r.read_bool(n, c.tlsrpt.enabled); }},
             {"organization",
              [](Reader& r, In n, Config& c) {
                  r.read_string(n, c.tlsrpt.organization, "expected the organization's name");
              }},
             {"contact",
              [](Reader& r, In n, Config& c) {
                  r.read_string(n, c.tlsrpt.contact, "expected a contact (a mail address or a URL)");
              }},
             {"from", [](Reader& r, In n, Config& c) { r.read_mail_address(n, c.tlsrpt.from); }},
             {"send_hour", [](Reader& r, In n, Config& c) { r.read_hour(n, c.tlsrpt.send_hour); }},
         }},
    };
    return sections;
}

const Section* find_section(std::string_view name) {
    for (const auto& s : schema()) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

// " (did you mean 'x'?)" for the closest known name within a small edit distance, else "".
template <class Names>
std::string suggest(std::string_view wrong, const Names& names, std::string_view prefix = {},
                    std::string_view suffix = {}) {
    std::size_t best = std::string_view::npos;
    std::string_view best_name;
    for (std::string_view name : names) {
        std::size_t d = detail::edit_distance(wrong, name);
        if (d < best) {
            best = d;
            best_name = name;
        }
    }
    const std::size_t limit = wrong.size() <= 4 ? 1 : 2;
    if (best_name.empty() || best > limit) return {};
    return " (did you mean '" + std::string(prefix) + std::string(best_name) + std::string(suffix) + "'?)";
}

std::vector<std::string_view> section_names() {
    std::vector<std::string_view> out;
    for (const auto& s : schema()) out.push_back(s.name);
    return out;
}

// "server.hostname" when a key of that name exists in another section, else "".
std::string other_section_with(std::string_view key, std::string_view except) {
    for (const auto& s : schema()) {
        if (s.name == except) continue;
        for (const auto& k : s.keys) {
            if (k.name == key) return std::string(s.name) + "." + std::string(key);
        }
    }
    return {};
}

void read_section(Reader& r, const Section& section, const toml::table& table, Config& cfg) {
    for (auto&& [key, node] : table) {
        const std::string full = std::string(section.name) + "." + std::string(key.str());
        const Key* known = nullptr;
        for (const auto& k : section.keys) {
            if (k.name == key.str()) known = &k;
        }
        if (known == nullptr) {
            std::string hint;
            if (auto other = other_section_with(key.str(), section.name); !other.empty()) {
                hint = " (did you mean '" + other + "'?)";
            } else {
                std::vector<std::string_view> names;
                for (const auto& k : section.keys) names.push_back(k.name);
                hint = suggest(key.str(), names);
            }
            r.key_problem(key.source().begin.line, full, "unknown key" + hint);
            continue;
        }
        r.begin_key(full, key.source().begin.line);
        known->read(r, node, cfg);
    }
}

void read_root(Reader& r, const toml::table& root, Config& cfg) {
    std::string all;
    for (auto name : section_names()) all += (all.empty() ? "[" : ", [") + std::string(name) + "]";
    for (auto&& [key, node] : root) {
        const std::size_t line = key.source().begin.line;
        if (key.str() == "dkim") {  // [[dkim]]: an array of tables, config/dkim.cpp
            detail::read_dkim(r, node, cfg);
            continue;
        }
        const Section* section = find_section(key.str());
        if (section == nullptr) {
            if (node.is_table()) {
                std::string hint = suggest(key.str(), section_names(), "[", "]");
                if (hint.empty()) hint = " (expected one of " + all + ")";
                r.problem(line, "unknown section '[" + std::string(key.str()) + "]'" + hint);
            } else {
                std::string other = other_section_with(key.str(), {});
                std::string hint =
                    other.empty() ? " (keys belong in a section: " + all + ")" : " (did you mean '" + other + "'?)";
                r.key_problem(line, key.str(), "unknown top-level key" + hint);
            }
            continue;
        }
        if (!node.is_table()) {
            r.key_problem(line, key.str(),
                          "wrong type: got " + std::string(detail::type_name(node)) + " (expected a table [" +
                              std::string(key.str()) + "])");
            continue;
        }
        read_section(r, *section, *node.as_table(), cfg);
    }
}

// errno text if path cannot be opened for reading as a regular file, else "".
std::string unreadable(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return std::strerror(errno);
    struct stat st {};
    std::string why;
    if (::fstat(fd, &st) != 0) {
        why = std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        why = S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file";
    }
    ::close(fd);
    return why;
}

// Relations between keys, and the files the user supplies.
void check(Reader& r, const Config& cfg, bool open_files) {
    auto pair = [&](std::string_view a, std::string_view b) {
        const std::size_t la = r.line_of(a);
        const std::size_t lb = r.line_of(b);
        if ((la == 0) == (lb == 0)) return;
        std::string_view given = la != 0 ? a : b;
        std::string_view missing = la != 0 ? b : a;
        r.key_problem(la != 0 ? la : lb, given,
                      "given without " + std::string(missing) + " (expected both or neither)");
    };
    pair("submission.cert", "submission.key");
    pair("escrow.cert", "escrow.key");

    const std::pair<std::string_view, const fs::path*> files[] = {
        {"submission.cert", &cfg.submission.cert},
        {"submission.key", &cfg.submission.key},
        {"dns.trust_anchor_file", &cfg.dns.trust_anchor_file},
        {"delivery.ca_file", &cfg.delivery.ca_file},
        {"escrow.cert", &cfg.escrow.cert},
        {"escrow.key", &cfg.escrow.key},
    };
    for (const auto& [key, path] : files) {
        const std::size_t line = r.line_of(key);
        if (!open_files || line == 0 || path->empty()) continue;
        if (std::string why = unreadable(*path); !why.empty()) {
            r.key_problem(line, key, "cannot read \"" + path->string() + "\": " + why + " (expected a readable file)");
        }
    }

    // A route's password file: a regular file no group or other may read (stat only: serve reads it
    // before it drops privileges, so it may be root's own).
    for (std::size_t i = 0; i < cfg.delivery.routes.size(); ++i) {
        const auto& route = cfg.delivery.routes[i];
        if (!open_files || route.auth_password_file.empty()) continue;
        const std::string key = "delivery.routes[" + std::to_string(i + 1) + "].auth_password_file";
        const std::size_t line = r.line_of(key);
        struct stat st {};
        if (::stat(route.auth_password_file.c_str(), &st) != 0) {
            r.key_problem(line, key,
                          "cannot read \"" + route.auth_password_file.string() + "\": " + std::strerror(errno));
        } else if (!S_ISREG(st.st_mode)) {
            r.key_problem(line, key, "\"" + route.auth_password_file.string() + "\" is not a regular file");
        } else if ((st.st_mode & 077) != 0) {
            r.key_problem(line, key,
                          "\"" + route.auth_password_file.string() +
                              "\" may be read by group or others (expected mode 0600 or 0400)");
        }
    }

    // The user serve drops to: a plain system user name (useradd's rules), never root (running
    // the parsers as root is what the setting exists to prevent).
    if (const std::size_t line = r.line_of("server.user"); line != 0) {
        const std::string& u = cfg.server.user;
        bool ok = !u.empty() && u.size() <= 32 && u[0] != '-';
        for (char ch : u)
            ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                        ch == '-' || ch == '.');
        if (!ok) {
            r.key_problem(line, "server.user",
                          "\"" + u +
                              "\" is not a user name (expected letters, digits, '_', '-', '.', "
                              "e.g. \"mailward\")");
        } else if (u == "root") {
            r.key_problem(line, "server.user",
                          "must not be root (expected an unprivileged system user, e.g. \"mailward\")");
        }
    }

    // mailward creates the master key itself (0600) on first start, but not the directory it goes
    // in.
    if (const std::size_t line = r.line_of("escrow.master_key_file");
        line != 0 && !cfg.escrow.master_key_file.empty()) {
        fs::path dir = cfg.escrow.master_key_file.parent_path();
        if (dir.empty()) dir = ".";
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            r.key_problem(line, "escrow.master_key_file",
                          "directory \"" + dir.string() +
                              "\" does not exist (expected an existing directory; mailward creates the "
                              "file itself on first start)");
        }
    }

    detail::check_dkim(r, cfg, open_files);
    detail::check_branding(r, cfg, open_files);

    if (cfg.escrow.code_lockout_max < cfg.escrow.code_lockout) {
        if (const std::size_t line = r.line_of("escrow.code_lockout_max"); line != 0)
            r.key_problem(line, "escrow.code_lockout_max",
                          "shorter than escrow.code_lockout (expected at least the first lockout's length)");
        else
            r.key_problem(r.line_of("escrow.code_lockout"), "escrow.code_lockout",
                          "longer than escrow.code_lockout_max (default 24h; expected at most that, or set both)");
    }

    const std::size_t backend_line = r.line_of("store.backend");
    const std::size_t dsn_line = r.line_of("store.dsn");
    if (cfg.store.backend == "postgres" && cfg.store.dsn.empty() && dsn_line == 0) {
        r.key_problem(backend_line, "store.backend",
                      "backend \"postgres\" needs store.dsn (expected dsn = \"postgresql://...\")");
    }
    if (cfg.store.backend == "sqlite" && dsn_line != 0) {
        r.key_problem(dsn_line, "store.dsn",
                      "only used with backend = \"postgres\" (expected no dsn with backend \"sqlite\")");
    }
    // Renewed every third of it: shorter would renew more often than a store round trip is sure to take.
    if (cfg.store.lease_time < std::chrono::seconds(3)) {
        if (const std::size_t line = r.line_of("store.lease_time"); line != 0)
            r.key_problem(line, "store.lease_time", "too short (expected at least 3s, e.g. \"2m\")");
    }
}

Result<Config> parse_in(std::string_view text, const std::string& name, const fs::path& base_dir, ConfigError& error,
                        bool open_files = true) {
    Reader r(name, base_dir);
    toml::table root;
    try {
        root = toml::parse(text, std::string_view(name));
    } catch (const toml::parse_error& e) {
        r.problem(e.source().begin.line, "TOML syntax error: " + std::string(e.description()));
        error = r.error();
        return common::Errc::invalid_argument;
    }
    Config cfg = defaults();
    read_root(r, root, cfg);
    check(r, cfg, open_files);
    if (!r.ok()) {
        error = r.error();
        return common::Errc::invalid_argument;
    }
    error = {};
    return cfg;
}

// Reads the whole file with errno-accurate messages; empty why means success.
std::string read_text(const fs::path& file, std::string& out) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return std::strerror(errno);
    std::string why;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        why = std::strerror(errno);
    } else if (S_ISDIR(st.st_mode)) {
        why = std::strerror(EISDIR);
    } else {
        char buf[16384];
        while (true) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                why = std::strerror(errno);
                break;
            }
            if (n == 0) break;
            out.append(buf, static_cast<std::size_t>(n));
            if (out.size() > kMaxFileSize) {
                why = "file is larger than " + std::to_string(kMaxFileSize) + " bytes";
                break;
            }
        }
    }
    ::close(fd);
    return why;
}

Result<Config> load_file(const std::filesystem::path& file, ConfigError& error, bool open_files) {
    const std::string name = file.string();
    try {
        std::string text;
        if (std::string why = read_text(file, text); !why.empty()) {
            error.message = name + ": cannot read: " + why;
            error.problems = {error.message};
            return common::Errc::io_error;
        }
        const fs::path absolute = fs::absolute(file).lexically_normal();
        auto cfg = parse_in(text, name, absolute.parent_path(), error, open_files);
        if (cfg) cfg->source = absolute;
        return cfg;
    } catch (const std::exception& e) {
        error.message = name + ": cannot load: " + e.what();
        error.problems = {error.message};
        return common::Errc::invalid_argument;
    }
}

}  // namespace

std::string_view to_string(SenderMode m) {
    switch (m) {
        case SenderMode::tls_or_escrow: return "tls-or-escrow";
        case SenderMode::tls_only: return "tls-only";
        case SenderMode::escrow_always: return "escrow-always";
        case SenderMode::opportunistic: return "opportunistic";
    }
    return "tls-or-escrow";  // unreachable for valid enum values
}

std::optional<SenderMode> parse_sender_mode(std::string_view s) {
    if (s == "tls-or-escrow") return SenderMode::tls_or_escrow;
    if (s == "tls-only") return SenderMode::tls_only;
    if (s == "escrow-always") return SenderMode::escrow_always;
    if (s == "opportunistic") return SenderMode::opportunistic;
    return std::nullopt;
}

Config defaults() {
    Config cfg;
    cfg.submission.trusted_networks = {*parse_network("127.0.0.0/8"), *parse_network("::1/128")};
    return cfg;
}

std::string tlsrpt_organization(const Config& cfg) {
    return cfg.tlsrpt.organization.empty() ? cfg.server.hostname : cfg.tlsrpt.organization;
}
std::string tlsrpt_contact(const Config& cfg) {
    return cfg.tlsrpt.contact.empty() ? "postmaster@" + cfg.server.hostname : cfg.tlsrpt.contact;
}
std::string tlsrpt_from(const Config& cfg) {
    return cfg.tlsrpt.from.empty() ? "postmaster@" + cfg.server.hostname : cfg.tlsrpt.from;
}

std::string node_name(const Config& cfg) { return cfg.store.node.empty() ? cfg.server.hostname : cfg.store.node; }

std::filesystem::path in_data_dir(const Config& cfg, const std::filesystem::path& p) {
    if (p.empty()) return cfg.server.data_dir;
    if (p.is_absolute()) return p;
    return cfg.server.data_dir / p;
}

Result<Config> parse(std::string_view toml_text, std::string_view name, ConfigError& error, FileChecks files) {
    try {
        return parse_in(toml_text, std::string(name), {}, error, files == FileChecks::open);
    } catch (const std::exception& e) {
        error.message = std::string(name) + ": cannot load: " + e.what();
        error.problems = {error.message};
        return common::Errc::invalid_argument;
    }
}

Result<Config> load(const std::filesystem::path& file, ConfigError& error) { return load_file(file, error, true); }

Result<Config> load_without_file_checks(const std::filesystem::path& file, ConfigError& error) {
    return load_file(file, error, false);
}

}  // namespace mailward::config
