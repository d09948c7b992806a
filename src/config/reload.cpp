// Reloading the configuration: which keys a running serve can take over in place and which need a
// restart (config/reload.hpp). Every key of config.hpp is listed here once, in the order of its
// struct: a new key must be classified here too (a key not listed would silently reload in place).
#include "config/reload.hpp"

namespace mailward::config {
namespace {

bool same(const Endpoint& a, const Endpoint& b) { return a.to_string() == b.to_string(); }
bool same(const Network& a, const Network& b) { return a.addr == b.addr && a.prefix == b.prefix; }
template <class T>
bool same(const T& a, const T& b) {
    return a == b;
}
template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same(a[i], b[i])) return false;
    }
    return true;
}

struct Merge {
    const Config& running;
    Config& next;
    Reloaded& out;

    // A key that changes in place: named in changed when it differs.
    template <auto S, auto F>
    void live(const char* name) {
        if (!same((running.*S).*F, (next.*S).*F)) out.changed.emplace_back(name);
    }
    // A key that needs a restart: set back to the running value, named in restart when it differed.
    template <auto S, auto F>
    void restart(const char* name) {
        if (same((running.*S).*F, (next.*S).*F)) return;
        (next.*S).*F = (running.*S).*F;
        out.restart.emplace_back(name);
    }
};

constexpr auto kServer = &Config::server;
constexpr auto kSub = &Config::submission;
constexpr auto kDns = &Config::dns;
constexpr auto kDelivery = &Config::delivery;
constexpr auto kPolicy = &Config::policy;
constexpr auto kEscrow = &Config::escrow;
constexpr auto kPortal = &Config::portal;
constexpr auto kStore = &Config::store;
constexpr auto kTlsRpt = &Config::tlsrpt;
using Srv = ServerConfig;
using Sub = SubmissionConfig;
using Del = DeliveryConfig;
using Pol = PolicyConfig;
using Esc = EscrowConfig;
using Por = PortalConfig;

}  // namespace

Reloaded merge_reload(const Config& running, Config next) {
    Reloaded out;
    Merge m{running, next, out};
    // [server]: the hostname names the delivery leases and the certificates made at start.
    m.restart<kServer, &Srv::hostname>("server.hostname");
    m.restart<kServer, &Srv::data_dir>("server.data_dir");
    m.live<kServer, &Srv::log_level>("server.log_level");
    m.restart<kServer, &Srv::user>("server.user");
    m.live<kServer, &Srv::shutdown_timeout>("server.shutdown_timeout");
    // [submission]: every session takes the settings current when it starts; the listeners and
    // the AUTH failure counters are made once.
    m.restart<kSub, &Sub::listen>("submission.listen");
    m.restart<kSub, &Sub::tls_listen>("submission.tls_listen");
    m.live<kSub, &Sub::cert>("submission.cert");
    m.live<kSub, &Sub::key>("submission.key");
    m.live<kSub, &Sub::trusted_networks>("submission.trusted_networks");
    m.live<kSub, &Sub::max_message_size>("submission.max_message_size");
    m.live<kSub, &Sub::max_recipients>("submission.max_recipients");
    m.live<kSub, &Sub::max_bad_commands>("submission.max_bad_commands");
    m.live<kSub, &Sub::max_connections>("submission.max_connections");
    m.live<kSub, &Sub::max_connections_per_ip>("submission.max_connections_per_ip");
    m.live<kSub, &Sub::command_timeout>("submission.command_timeout");
    m.live<kSub, &Sub::data_timeout>("submission.data_timeout");
    m.restart<kSub, &Sub::ipv4_prefix>("submission.ipv4_prefix");
    m.restart<kSub, &Sub::ipv6_prefix>("submission.ipv6_prefix");
    m.live<kSub, &Sub::max_junk_commands>("submission.max_junk_commands");
    m.live<kSub, &Sub::max_session_time>("submission.max_session_time");
    m.restart<kSub, &Sub::max_auth_failures>("submission.max_auth_failures");
    m.restart<kSub, &Sub::auth_failure_window>("submission.auth_failure_window");
    m.live<kSub, &Sub::stress_command_timeout>("submission.stress_command_timeout");
    m.live<kSub, &Sub::max_hops>("submission.max_hops");
    m.live<kSub, &Sub::sender_login_match>("submission.sender_login_match");
    m.live<kSub, &Sub::trusted_senders>("submission.trusted_senders");
    // [dns]: the resolver is made once.
    m.restart<kDns, &DnsConfig::servers>("dns.servers");
    m.restart<kDns, &DnsConfig::trust_anchor_file>("dns.trust_anchor_file");
    m.restart<kDns, &DnsConfig::timeout>("dns.timeout");
    // [delivery]: the engine reads these per attempt; the port and the trust anchors are also the
    // prober's and the client TLS context's, made once; the per-destination slots too.
    m.restart<kDelivery, &Del::port>("delivery.port");
    m.restart<kDelivery, &Del::ca_file>("delivery.ca_file");
    m.live<kDelivery, &Del::retry_schedule>("delivery.retry_schedule");
    m.live<kDelivery, &Del::max_queue_lifetime>("delivery.max_queue_lifetime");
    m.live<kDelivery, &Del::delay_warning_time>("delivery.delay_warning_time");
    m.live<kDelivery, &Del::bind_address>("delivery.bind_address");
    m.live<kDelivery, &Del::bind_address6>("delivery.bind_address6");
    m.live<kDelivery, &Del::max_concurrency>("delivery.max_concurrency");
    m.restart<kDelivery, &Del::max_per_destination>("delivery.max_per_destination");
    m.live<kDelivery, &Del::connect_timeout>("delivery.connect_timeout");
    m.live<kDelivery, &Del::greeting_timeout>("delivery.greeting_timeout");
    m.live<kDelivery, &Del::command_timeout>("delivery.command_timeout");
    m.live<kDelivery, &Del::data_init_timeout>("delivery.data_init_timeout");
    m.live<kDelivery, &Del::data_block_timeout>("delivery.data_block_timeout");
    m.live<kDelivery, &Del::data_done_timeout>("delivery.data_done_timeout");
    m.live<kDelivery, &Del::allow_loopback_mx>("delivery.allow_loopback_mx");
    m.restart<kDelivery, &Del::routes>("delivery.routes");  // serve reads the passwords at start
    // [policy]: read per delivery; DANE is also the prober's, the MTA-STS port the fetcher's.
    m.live<kPolicy, &Pol::default_mode>("policy.default_mode");
    m.live<kPolicy, &Pol::escrow_after>("policy.escrow_after");
    m.live<kPolicy, &Pol::mta_sts>("policy.mta_sts");
    m.restart<kPolicy, &Pol::mta_sts_port>("policy.mta_sts_port");
    m.restart<kPolicy, &Pol::dane>("policy.dane");
    m.live<kPolicy, &Pol::tls_optional_trusted_networks>("policy.tls_optional_trusted_networks");
    m.live<kPolicy, &Pol::preload_file>("policy.preload_file");
    m.live<kPolicy, &Pol::domains>("policy.domains");
    // [escrow]: the portal's certificate reloads; the escrow services are made once.
    m.restart<kEscrow, &Esc::listen>("escrow.listen");
    m.restart<kEscrow, &Esc::url>("escrow.url");
    m.live<kEscrow, &Esc::cert>("escrow.cert");
    m.live<kEscrow, &Esc::key>("escrow.key");
    m.restart<kEscrow, &Esc::master_key_file>("escrow.master_key_file");
    m.restart<kEscrow, &Esc::expiry>("escrow.expiry");
    m.restart<kEscrow, &Esc::notify_sender>("escrow.notify_sender");
    m.restart<kEscrow, &Esc::code_lockout>("escrow.code_lockout");
    m.restart<kEscrow, &Esc::code_lockout_max>("escrow.code_lockout_max");
    m.restart<kEscrow, &Esc::code_max_failures>("escrow.code_max_failures");
    // [portal]: the web server's limits are made once.
    m.restart<kPortal, &Por::max_connections>("portal.max_connections");
    m.restart<kPortal, &Por::max_connections_per_address>("portal.max_connections_per_address");
    m.restart<kPortal, &Por::header_timeout>("portal.header_timeout");
    m.restart<kPortal, &Por::body_timeout>("portal.body_timeout");
    m.restart<kPortal, &Por::max_form_size>("portal.max_form_size");
    m.restart<kPortal, &Por::max_reply_size>("portal.max_reply_size");
    m.restart<kPortal, &Por::replies_per_message>("portal.replies_per_message");
    m.restart<kPortal, &Por::replies_per_session>("portal.replies_per_session");
    m.restart<kPortal, &Por::reply_window>("portal.reply_window");
    m.restart<kPortal, &Por::max_replies_size>("portal.max_replies_size");
    // [store]
    m.restart<kStore, &StoreConfig::backend>("store.backend");
    m.restart<kStore, &StoreConfig::dsn>("store.dsn");
    m.restart<kStore, &StoreConfig::commit_interval>("store.commit_interval");
    m.restart<kStore, &StoreConfig::node>("store.node");
    m.restart<kStore, &StoreConfig::lease_time>("store.lease_time");
    // [branding]: the escrow services and the portal take it once, at start (the logo is read
    // before the privilege drop).
    m.restart<&Config::branding, &BrandingConfig::organization>("branding.organization");
    m.restart<&Config::branding, &BrandingConfig::logo_file>("branding.logo_file");
    m.restart<&Config::branding, &BrandingConfig::color>("branding.color");
    m.restart<&Config::branding, &BrandingConfig::support_contact>("branding.support_contact");
    m.restart<&Config::branding, &BrandingConfig::language>("branding.language");
    // [tlsrpt]: the recorder and the daily sender are set up once, at start.
    m.restart<kTlsRpt, &TlsRptConfig::enabled>("tlsrpt.enabled");
    m.restart<kTlsRpt, &TlsRptConfig::organization>("tlsrpt.organization");
    m.restart<kTlsRpt, &TlsRptConfig::contact>("tlsrpt.contact");
    m.restart<kTlsRpt, &TlsRptConfig::from>("tlsrpt.from");
    m.restart<kTlsRpt, &TlsRptConfig::send_hour>("tlsrpt.send_hour");
    // [[dkim]]: serve reads the keys while it is root, before the privilege drop; a reload cannot.
    if (!same(running.dkim, next.dkim)) {
        next.dkim = running.dkim;
        out.restart.emplace_back("dkim");
    }
    out.config = std::move(next);
    return out;
}

Result<Reloaded> reload(const Config& running, ConfigError& error) {
    if (running.source.empty()) {
        error.message = "no configuration file to reload (serve was started without -c)";
        error.problems = {error.message};
        return common::Errc::unsupported;
    }
    // After the privilege drop a key may be root's: the part that uses it says so and keeps its old one.
    auto next = load_without_file_checks(running.source, error);
    if (!next) return next.error();
    return merge_reload(running, std::move(*next));
}

}  // namespace mailward::config
