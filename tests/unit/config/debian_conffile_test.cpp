// The Debian package's /etc/mailward/mailward.toml (debian/mailward.toml) loads, and every value it
// writes is the documented default (the embedded one), except data_dir, which it sets to the real path
// /var/lib/mailward. Table-driven: one row per key the file writes.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace mailward::config;

namespace {

std::string join_endpoints(const std::vector<Endpoint>& v) {
    std::string out;
    for (const auto& e : v) out += e.to_string() + ",";
    return out;
}

std::string join_networks(const std::vector<Network>& v) {
    std::string out;
    for (const auto& n : v) out += n.text + ",";
    return out;
}

template <typename D>
std::string ms(D d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

struct Row {
    const char* key;
    std::function<std::string(const Config&)> value;
};

const std::vector<Row> kRows = {
    {"server.hostname", [](const Config& c) { return c.server.hostname; }},
    {"server.log_level", [](const Config& c) { return c.server.log_level; }},
    {"server.user", [](const Config& c) { return c.server.user; }},
    {"submission.listen", [](const Config& c) { return join_endpoints(c.submission.listen); }},
    {"submission.tls_listen", [](const Config& c) { return join_endpoints(c.submission.tls_listen); }},
    {"submission.cert", [](const Config& c) { return c.submission.cert.string(); }},
    {"submission.trusted_networks", [](const Config& c) { return join_networks(c.submission.trusted_networks); }},
    {"submission.max_message_size", [](const Config& c) { return std::to_string(c.submission.max_message_size); }},
    {"submission.max_recipients", [](const Config& c) { return std::to_string(c.submission.max_recipients); }},
    {"submission.max_connections", [](const Config& c) { return std::to_string(c.submission.max_connections); }},
    {"submission.command_timeout", [](const Config& c) { return ms(c.submission.command_timeout); }},
    {"submission.data_timeout", [](const Config& c) { return ms(c.submission.data_timeout); }},
    {"submission.max_session_time", [](const Config& c) { return ms(c.submission.max_session_time); }},
    {"submission.max_hops", [](const Config& c) { return std::to_string(c.submission.max_hops); }},
    {"dns.servers", [](const Config& c) { return join_endpoints(c.dns.servers); }},
    {"dns.trust_anchor_file", [](const Config& c) { return c.dns.trust_anchor_file.string(); }},
    {"dns.timeout", [](const Config& c) { return ms(c.dns.timeout); }},
    {"delivery.port", [](const Config& c) { return std::to_string(c.delivery.port); }},
    {"delivery.retry_schedule",
     [](const Config& c) {
         std::string out;
         for (auto d : c.delivery.retry_schedule) out += ms(d) + ",";
         return out;
     }},
    {"delivery.max_queue_lifetime", [](const Config& c) { return ms(c.delivery.max_queue_lifetime); }},
    {"delivery.max_concurrency", [](const Config& c) { return std::to_string(c.delivery.max_concurrency); }},
    {"delivery.allow_loopback_mx", [](const Config& c) { return std::to_string(c.delivery.allow_loopback_mx); }},
    {"policy.default_mode", [](const Config& c) { return std::string(to_string(c.policy.default_mode)); }},
    {"policy.escrow_after", [](const Config& c) { return ms(c.policy.escrow_after); }},
    {"policy.mta_sts", [](const Config& c) { return std::to_string(c.policy.mta_sts); }},
    {"policy.dane", [](const Config& c) { return std::to_string(c.policy.dane); }},
    {"policy.tls_optional_trusted_networks",
     [](const Config& c) { return std::to_string(c.policy.tls_optional_trusted_networks); }},
    {"escrow.listen", [](const Config& c) { return c.escrow.listen; }},
    {"escrow.url", [](const Config& c) { return c.escrow.url; }},
    {"escrow.master_key_file", [](const Config& c) { return c.escrow.master_key_file.string(); }},
    {"escrow.expiry", [](const Config& c) { return ms(c.escrow.expiry); }},
    {"escrow.code_max_failures", [](const Config& c) { return std::to_string(c.escrow.code_max_failures); }},
    {"portal.max_connections", [](const Config& c) { return std::to_string(c.portal.max_connections); }},
    {"portal.max_reply_size", [](const Config& c) { return std::to_string(c.portal.max_reply_size); }},
    {"portal.reply_window", [](const Config& c) { return ms(c.portal.reply_window); }},
    {"store.backend", [](const Config& c) { return c.store.backend; }},
    {"store.commit_interval", [](const Config& c) { return ms(c.store.commit_interval); }},
    {"store.lease_time", [](const Config& c) { return ms(c.store.lease_time); }},
};

}  // namespace

TEST(DebianConffile, LoadsWithTheRealDataDir) {
    ConfigError err;
    auto cfg = load(MAILWARD_DEBIAN_CONFFILE, err);
    ASSERT_TRUE(cfg.has_value()) << err.message;
    EXPECT_EQ(cfg->server.data_dir, "/var/lib/mailward");
}

TEST(DebianConffile, EveryOtherValueIsTheDefault) {
    ConfigError err;
    auto shipped = load(MAILWARD_DEBIAN_CONFFILE, err);
    ASSERT_TRUE(shipped.has_value()) << err.message;
    auto defaults = parse("[server]\ndata_dir = \"/var/lib/mailward\"\n", "defaults.toml", err);
    ASSERT_TRUE(defaults.has_value()) << err.message;
    for (const auto& row : kRows) {
        EXPECT_EQ(row.value(*shipped), row.value(*defaults)) << row.key;
    }
}

// The file shows every section, so an administrator finds each key where docs/config.md puts it.
TEST(DebianConffile, WritesEverySection) {
    std::ifstream in(MAILWARD_DEBIAN_CONFFILE);
    std::stringstream text;
    text << in.rdbuf();
    for (const char* section :
         {"[server]", "[submission]", "[dns]", "[delivery]", "[policy]", "[escrow]", "[portal]", "[store]"}) {
        EXPECT_NE(text.str().find(std::string("\n") + section + "\n"), std::string::npos) << section;
    }
}
