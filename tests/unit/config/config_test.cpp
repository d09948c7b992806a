// Table-driven tests of config::parse: bad snippets with the exact message part they must produce
// (file, line, key, what is wrong), good snippets with the values they must yield, and defaults.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <functional>

using namespace mailward::config;
using mailward::Result;
using namespace std::chrono_literals;

namespace {

Result<Config> parse_text(const std::string& text, ConfigError& err) { return parse(text, "t.toml", err); }

bool net_contains(const std::vector<Network>& nets, const char* address) {
    for (const auto& n : nets) {
        if (n.contains(*parse_ip(address))) return true;
    }
    return false;
}

}  // namespace

TEST(ConfigParse, RejectsBadSnippets) {
    struct Case {
        const char* toml;
        const char* want;      // substring of error.message
        const char* not_want;  // must not appear, or nullptr
    };
    const Case cases[] = {
        // TOML syntax
        {"[server]\nhostname = \n", "t.toml:2: TOML syntax error: ", nullptr},
        {"[server]\n\nhostname = \"a\nlog_level = \"info\"\n", "t.toml:3: TOML syntax error", nullptr},
        {"[server]\nhostname = \"a\"\nhostname = \"b\"\n", "t.toml:3: TOML syntax error", nullptr},
        {"[server\n", "t.toml:1: TOML syntax error", nullptr},
        // sections
        {"[sever]\nhostname = \"x\"\n", "t.toml:1: unknown section '[sever]' (did you mean '[server]'?)", nullptr},
        {"\n[smtp]\n", "t.toml:2: unknown section '[smtp]' (expected one of [server], [submission], [dns]",
         "did you mean"},
        {"server = 5\n", "t.toml:1: key 'server': wrong type: got integer (expected a table [server])", nullptr},
        {"[[server]]\nhostname = \"x\"\n", "t.toml:1: key 'server': wrong type: got array", nullptr},
        {"hostname = \"x\"\n", "t.toml:1: key 'hostname': unknown top-level key (did you mean 'server.hostname'?)",
         nullptr},
        {"flavour = 1\n", "t.toml:1: key 'flavour': unknown top-level key (keys belong in a section", nullptr},
        {"color = 1\n", "t.toml:1: key 'color': unknown top-level key (did you mean 'branding.color'?)", nullptr},
        // unknown keys
        {"[submission]\nlisen = [\"127.0.0.1:25\"]\n",
         "t.toml:2: key 'submission.lisen': unknown key (did you mean 'listen'?)", nullptr},
        {"[submission]\n\nmax_recipient = 5\n",
         "t.toml:3: key 'submission.max_recipient': unknown key (did you mean 'max_recipients'?)", nullptr},
        {"[submission]\nhostname = \"x\"\n",
         "t.toml:2: key 'submission.hostname': unknown key (did you mean 'server.hostname'?)", nullptr},
        {"[submission]\nfrobnicate = 1\n", "t.toml:2: key 'submission.frobnicate': unknown key", "did you mean"},
        {"[submission]\nrequire_tls_for_auth = false\n", "t.toml:2: key 'submission.require_tls_for_auth': unknown key",
         nullptr},
        {"[server.extra]\nx = 1\n", "t.toml:1: key 'server.extra': unknown key", nullptr},
        {"[store]\nbackend = \"sqlite\"\ndns = \"x\"\n", "t.toml:3: key 'store.dns': unknown key (did you mean 'dsn'?)",
         nullptr},
        // [server]
        {"[server]\nhostname = 5\n",
         "t.toml:2: key 'server.hostname': wrong type: got integer (expected a domain name string", nullptr},
        {"[server]\nhostname = \"bad host!\"\n", "t.toml:2: key 'server.hostname': bad host name \"bad host!\"",
         nullptr},
        {"[server]\nhostname = \"\"\n", "key 'server.hostname': bad host name \"\"", nullptr},
        {"[server]\nhostname = \"-a.example\"\n", "bad host name", nullptr},
        // the one domain check (common/domain.hpp): an address is not a host name (RFC 3696 2)
        {"[server]\nhostname = \"192.0.2.1\"\n", "t.toml:2: key 'server.hostname': bad host name \"192.0.2.1\"",
         nullptr},
        {"[server]\nhostname = \"a_b.example\"\n", "bad host name", nullptr},
        {"[server]\nhostname = \"a.example.\"\n", "bad host name", nullptr},
        {"[server]\ndata_dir = \"\"\n", "t.toml:2: key 'server.data_dir': bad path \"\"", nullptr},
        {"[server]\ndata_dir = [\"a\"]\n", "t.toml:2: key 'server.data_dir': wrong type: got array", nullptr},
        {"[server]\nlog_level = \"verbose\"\n",
         "t.toml:2: key 'server.log_level': unknown value \"verbose\" (expected one of trace, "
         "debug, info, "
         "warn, error, off)",
         nullptr},
        {"[server]\nlog_level = \"INFO\"\n", "unknown value \"INFO\"", nullptr},
        {"[server]\nlog_level = 3\n",
         "t.toml:2: key 'server.log_level': wrong type: got integer (expected a string: one of "
         "trace, debug",
         nullptr},
        // [submission]
        {"[submission]\nlisten = \"127.0.0.1:2525\"\n",
         "t.toml:2: key 'submission.listen': wrong type: got string (expected an array of endpoint "
         "strings",
         nullptr},
        {"[submission]\nlisten = [\"127.0.0.1\"]\n",
         "t.toml:2: key 'submission.listen': bad endpoint \"127.0.0.1\": the port is missing "
         "(expected "
         "\"host:port\" or \"[v6]:port\"",
         nullptr},
        {"[submission]\nlisten = [\"127.0.0.1:0\"]\n", "bad endpoint \"127.0.0.1:0\": port 0 is out of range", nullptr},
        {"[submission]\ntls_listen = [\"127.0.0.1:65536\"]\n",
         "t.toml:2: key 'submission.tls_listen': bad endpoint \"127.0.0.1:65536\": port 65536 is "
         "out of range",
         nullptr},
        {"[submission]\nlisten = [\"::1:2525\"]\n", "needs brackets, as in [::1]:2525", nullptr},
        {"[submission]\nlisten = [\"localhost:2525\"]\n", "'localhost' is not an IP address", nullptr},
        {"[submission]\nlisten = [\n  \"127.0.0.1:2525\",\n  \"nope\",\n]\n",
         "t.toml:4: key 'submission.listen': bad endpoint \"nope\"", nullptr},
        {"[submission]\nlisten = [2525]\n", "t.toml:2: key 'submission.listen': element 1 has wrong type: got integer",
         nullptr},
        {"[submission]\ntrusted_networks = \"10.0.0.0/8\"\n",
         "t.toml:2: key 'submission.trusted_networks': wrong type: got string (expected an array "
         "of networks",
         nullptr},
        {"[submission]\ntrusted_networks = [\"10.0.0.0/33\"]\n",
         "t.toml:2: key 'submission.trusted_networks': bad network \"10.0.0.0/33\": prefix length "
         "'33' is not "
         "0-32",
         nullptr},
        {"[submission]\ntrusted_networks = [\"10.1.2.3/8\"]\n",
         "bad network \"10.1.2.3/8\": host bits are set after /8, did you mean 10.0.0.0/8? "
         "(expected",
         nullptr},
        {"[submission]\ntrusted_networks = [\"::1/200\"]\n", "prefix length '200' is not 0-128", nullptr},
        {"[submission]\ntrusted_networks = [\"bogus\"]\n", "bad network \"bogus\": 'bogus' is not an IP address",
         nullptr},
        {"[submission]\ntrusted_networks = [\"10.0.0.0/8\", 7]\n", "element 2 has wrong type: got integer", nullptr},
        {"[submission]\nmax_message_size = 0\n",
         "t.toml:2: key 'submission.max_message_size': value 0 is not positive (expected an "
         "integer >= 1)",
         nullptr},
        {"[submission]\nmax_recipients = -5\n", "key 'submission.max_recipients': value -5 is not positive", nullptr},
        {"[submission]\nmax_connections = \"100\"\n",
         "t.toml:2: key 'submission.max_connections': wrong type: got string (expected a positive "
         "integer)",
         nullptr},
        {"[submission]\nmax_bad_commands = 1.5\n", "key 'submission.max_bad_commands': wrong type: got float", nullptr},
        {"[submission]\nmax_connections_per_ip = 0\n", "key 'submission.max_connections_per_ip': value 0", nullptr},
        {"[submission]\ncommand_timeout = \"5\"\n",
         "t.toml:2: key 'submission.command_timeout': bad duration \"5\" (expected an integer and "
         "a unit",
         nullptr},
        {"[submission]\ncommand_timeout = \"0s\"\n",
         "key 'submission.command_timeout': duration \"0s\" is zero (expected a duration greater "
         "than zero)",
         nullptr},
        {"[submission]\ndata_timeout = 300\n",
         "t.toml:2: key 'submission.data_timeout': wrong type: got integer (expected a duration "
         "string",
         nullptr},
        {"[submission]\ncert = \"/nonexistent/mailward/c.pem\"\nkey = "
         "\"/nonexistent/mailward/k.pem\"\n",
         "t.toml:2: key 'submission.cert': cannot read \"/nonexistent/mailward/c.pem\": No such "
         "file or "
         "directory (expected a readable file)",
         nullptr},
        // [dns]
        {"[dns]\nservers = [\"1.2.3.4:99999\"]\n", "t.toml:2: key 'dns.servers': bad endpoint \"1.2.3.4:99999\"",
         nullptr},
        {"[dns]\nservers = [\"resolver.example\"]\n", "the port may be left out for 53", nullptr},
        {"[dns]\ntimeout = \"10 s\"\n", "t.toml:2: key 'dns.timeout': bad duration \"10 s\"", nullptr},
        {"[dns]\ntrust_anchor_file = \"/nonexistent/root.key\"\n",
         "t.toml:2: key 'dns.trust_anchor_file': cannot read \"/nonexistent/root.key\"", nullptr},
        // [delivery]
        {"[delivery]\nport = 0\n", "t.toml:2: key 'delivery.port': port 0 is out of range (expected 1-65535)", nullptr},
        {"[delivery]\nport = 70000\n", "port 70000 is out of range", nullptr},
        {"[delivery]\nport = \"25\"\n", "key 'delivery.port': wrong type: got string", nullptr},
        {"[delivery]\nca_file = \"/\"\n", "key 'delivery.ca_file': cannot read \"/\": it is a directory", nullptr},
        {"[delivery]\nretry_schedule = []\n",
         "t.toml:2: key 'delivery.retry_schedule': empty list (expected at least one duration", nullptr},
        {"[delivery]\nretry_schedule = [\"1m\", \"soon\"]\n",
         "t.toml:2: key 'delivery.retry_schedule': bad duration \"soon\"", nullptr},
        {"[delivery]\nretry_schedule = \"1m\"\n", "key 'delivery.retry_schedule': wrong type: got string", nullptr},
        {"[delivery]\nretry_schedule = [\"1m\", 5]\n", "element 2 has wrong type: got integer", nullptr},
        {"[delivery]\nmax_queue_lifetime = \"5y\"\n", "key 'delivery.max_queue_lifetime': bad duration \"5y\"",
         nullptr},
        {"[delivery]\nmax_concurrency = 0\n", "key 'delivery.max_concurrency': value 0 is not positive", nullptr},
        {"[delivery]\ndelay_warning_time = \"later\"\n", "t.toml:2: key 'delivery.delay_warning_time': bad duration",
         nullptr},
        {"[delivery]\nbind_address = \"::1\"\n",
         "t.toml:2: key 'delivery.bind_address': bad address \"::1\" (expected an IPv4 address", nullptr},
        {"[delivery]\nbind_address6 = \"127.0.0.1\"\n",
         "t.toml:2: key 'delivery.bind_address6': bad address \"127.0.0.1\" (expected an IPv6 address", nullptr},
        {"[delivery]\nbind_address = 7\n", "t.toml:2: key 'delivery.bind_address': wrong type: got integer", nullptr},
        {"[escrow]\nnotify_sender = \"tls-only\"\n", "t.toml:2: key 'escrow.notify_sender': wrong type: got string",
         nullptr},
        {"[escrow]\nnotify_sender = [\"tls-only\", \"sometimes\"]\n",
         "t.toml:2: key 'escrow.notify_sender': unknown value \"sometimes\" (expected one of tls-or-escrow", nullptr},
        {"[escrow]\nnotify_sender = [\"tls-only\", \"tls-only\"]\n",
         "t.toml:2: key 'escrow.notify_sender': \"tls-only\" is listed twice", nullptr},
        {"[delivery]\nmax_per_destination = -1\n", "key 'delivery.max_per_destination': value -1", nullptr},
        {"[delivery]\ndata_done_timeout = \"-10m\"\n", "key 'delivery.data_done_timeout': bad duration", nullptr},
        {"[delivery]\nallow_loopback_mx = \"yes\"\n",
         "t.toml:2: key 'delivery.allow_loopback_mx': wrong type: got string", nullptr},
        // [policy]
        {"[policy]\ndefault_mode = \"paranoid\"\n",
         "t.toml:2: key 'policy.default_mode': unknown value \"paranoid\" (expected one of "
         "tls-or-escrow, "
         "tls-only, escrow-always, opportunistic)",
         nullptr},
        {"[policy]\ndefault_mode = \"tls_only\"\n", "unknown value \"tls_only\"", nullptr},
        {"[policy]\nmta_sts = \"yes\"\n",
         "t.toml:2: key 'policy.mta_sts': wrong type: got string (expected true or false)", nullptr},
        {"[policy]\ndane = 1\n", "key 'policy.dane': wrong type: got integer", nullptr},
        {"[policy]\nescrow_after = \"-1h\"\n", "key 'policy.escrow_after': bad duration \"-1h\"", nullptr},
        // [escrow]
        {"[escrow]\nurl = \"http://portal.example.test\"\n",
         "t.toml:2: key 'escrow.url': bad URL \"http://portal.example.test\" (expected an https:// "
         "URL",
         nullptr},
        {"[escrow]\nurl = \"https://\"\n", "key 'escrow.url': bad URL", nullptr},
        {"[escrow]\nurl = true\n", "key 'escrow.url': wrong type: got boolean (expected an https:// URL string)",
         nullptr},
        {"[escrow]\nurl = \"https://a b\"\n", "key 'escrow.url': bad URL", nullptr},
        {"[escrow]\nlisten = \"localhost:8443\"\n", "t.toml:2: key 'escrow.listen': bad endpoint \"localhost:8443\"",
         nullptr},
        {"[escrow]\nlisten = [\"127.0.0.1:8443\"]\n", "key 'escrow.listen': wrong type: got array", nullptr},
        {"[escrow]\nexpiry = \"0d\"\n", "key 'escrow.expiry': duration \"0d\" is zero", nullptr},
        {"[escrow]\nmaster_key_file = \"/nonexistent/mailward/master.key\"\n",
         "t.toml:2: key 'escrow.master_key_file': directory \"/nonexistent/mailward\" does not "
         "exist",
         nullptr},
        {"[escrow]\ncert = \"/nonexistent/e.pem\"\nkey = \"/nonexistent/e.key\"\n",
         "t.toml:2: key 'escrow.cert': cannot read \"/nonexistent/e.pem\"", nullptr},
        // [store]
        {"[store]\nbackend = \"mysql\"\n",
         "t.toml:2: key 'store.backend': unknown value \"mysql\" (expected one of sqlite, "
         "postgres)",
         nullptr},
        {"[store]\nbackend = \"postgres\"\n",
         "t.toml:2: key 'store.backend': backend \"postgres\" needs store.dsn (expected dsn = ", nullptr},
        {"[store]\nbackend = \"postgres\"\ndsn = \"\"\n", "t.toml:3: key 'store.dsn': empty string", nullptr},
        {"[store]\ndsn = \"postgresql://db/mailward\"\n",
         "t.toml:2: key 'store.dsn': only used with backend = \"postgres\"", nullptr},
        {"[store]\ncommit_interval = \"soon\"\n", "key 'store.commit_interval': bad duration", nullptr},
        {"[store]\nlease_time = \"2s\"\n", "t.toml:2: key 'store.lease_time': too short (expected at least 3s",
         nullptr},
        {"[store]\nlease_time = \"0s\"\n", "t.toml:2: key 'store.lease_time':", nullptr},
        {"[store]\nnode = \"node a\"\n", "t.toml:2: key 'store.node':", nullptr},
    };
    for (const auto& c : cases) {
        ConfigError err;
        auto cfg = parse_text(c.toml, err);
        EXPECT_FALSE(cfg.has_value()) << c.toml;
        EXPECT_NE(err.message.find(c.want), std::string::npos)
            << "toml:\n"
            << c.toml << "\nmessage: " << err.message << "\nwant: " << c.want;
        if (c.not_want != nullptr) {
            EXPECT_EQ(err.message.find(c.not_want), std::string::npos) << err.message;
        }
        EXPECT_EQ(err.message.find('\n'), std::string::npos) << "one line: " << err.message;
        ASSERT_FALSE(err.problems.empty());
        EXPECT_EQ(err.problems.front(), err.message);
    }
}

TEST(ConfigParse, ReportsFirstProblemInFileOrderAndListsAll) {
    // toml++ iterates keys alphabetically; the error must still follow the file.
    const char* toml =
        "[store]\n"
        "backend = \"mysql\"\n"
        "[server]\n"
        "log_level = \"loud\"\n"
        "[submission]\n"
        "max_recipients = 0\n"
        "zzz = 1\n";
    ConfigError err;
    EXPECT_FALSE(parse_text(toml, err).has_value());
    EXPECT_EQ(err.message.rfind("t.toml:2: key 'store.backend'", 0), 0u) << err.message;
    ASSERT_EQ(err.problems.size(), 4u);
    EXPECT_EQ(err.problems[1].rfind("t.toml:4: key 'server.log_level'", 0), 0u) << err.problems[1];
    EXPECT_EQ(err.problems[2].rfind("t.toml:6: key 'submission.max_recipients'", 0), 0u) << err.problems[2];
    EXPECT_EQ(err.problems[3].rfind("t.toml:7: key 'submission.zzz'", 0), 0u) << err.problems[3];
}

TEST(ConfigParse, AcceptsGoodSnippets) {
    struct Case {
        const char* toml;
        std::function<void(const Config&)> check;
    };
    const Case cases[] = {
        {"", [](const Config& c) { EXPECT_EQ(c.server.hostname, "localhost"); }},
        {"# only a comment\n", [](const Config& c) { EXPECT_EQ(c.submission.trusted_networks.size(), 2u); }},
        // The keys of docs/design.md's interface contract (paths are tested in load_test.cpp).
        {R"([server]
hostname = "relay.example.test"
data_dir = "/var/lib/mailward"
[submission]
listen = ["127.0.0.1:2525"]
tls_listen = ["127.0.0.1:4650"]
trusted_networks = ["127.0.0.0/8"]
[dns]
servers = ["127.0.0.1:5353"]
[delivery]
port = 25
retry_schedule = ["1m","5m","15m","1h"]
max_queue_lifetime = "5d"
[policy]
default_mode = "tls-or-escrow"
escrow_after = "1h"
mta_sts = true
dane = true
[escrow]
listen = "127.0.0.1:8443"
url = "https://portal.example.test:8443"
expiry = "30d"
[store]
backend = "sqlite"
)",
         [](const Config& c) {
             EXPECT_EQ(c.server.hostname, "relay.example.test");
             EXPECT_EQ(c.server.data_dir, "/var/lib/mailward");
             ASSERT_EQ(c.submission.listen.size(), 1u);
             EXPECT_EQ(c.submission.listen[0].to_string(), "127.0.0.1:2525");
             ASSERT_EQ(c.submission.tls_listen.size(), 1u);
             EXPECT_EQ(c.submission.tls_listen[0].port, 4650);
             ASSERT_EQ(c.submission.trusted_networks.size(), 1u);  // replaces the default list
             EXPECT_TRUE(net_contains(c.submission.trusted_networks, "127.0.0.1"));
             EXPECT_FALSE(net_contains(c.submission.trusted_networks, "::1"));
             ASSERT_EQ(c.dns.servers.size(), 1u);
             EXPECT_EQ(c.dns.servers[0].to_string(), "127.0.0.1:5353");
             EXPECT_EQ(c.delivery.port, 25);
             EXPECT_EQ(c.delivery.retry_schedule, (std::vector<Duration>{1min, 5min, 15min, 1h}));
             EXPECT_EQ(c.delivery.max_queue_lifetime, 120h);
             EXPECT_EQ(c.policy.default_mode, SenderMode::tls_or_escrow);
             EXPECT_EQ(c.policy.escrow_after, 1h);
             EXPECT_TRUE(c.policy.mta_sts);
             EXPECT_TRUE(c.policy.dane);
             EXPECT_EQ(c.escrow.listen, "127.0.0.1:8443");
             EXPECT_EQ(c.escrow.url, "https://portal.example.test:8443");
             EXPECT_EQ(c.escrow.expiry, 720h);
             EXPECT_EQ(c.store.backend, "sqlite");
             EXPECT_TRUE(c.source.empty());
         }},
        {"[dns]\nservers = [\"127.0.0.1:5353\", \"::1\", \"[::1]\", \"[2001:db8::1]:5353\", "
         "\"192.0.2.1\"]\ntimeout = \"3s\"\n",
         [](const Config& c) {
             ASSERT_EQ(c.dns.servers.size(), 5u);
             const char* want[] = {"127.0.0.1:5353", "[::1]:53", "[::1]:53", "[2001:db8::1]:5353", "192.0.2.1:53"};
             for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(c.dns.servers[i].to_string(), want[i]);
             EXPECT_EQ(c.dns.timeout, 3s);
         }},
        {"[submission]\nlisten = [\"[::0001]:2525\", \"0.0.0.0:587\"]\ntls_listen = []\n",
         [](const Config& c) {
             ASSERT_EQ(c.submission.listen.size(), 2u);
             EXPECT_EQ(c.submission.listen[0].host, "::1");
             EXPECT_EQ(c.submission.listen[0].to_string(), "[::1]:2525");
             EXPECT_EQ(c.submission.listen[1].to_string(), "0.0.0.0:587");
             EXPECT_TRUE(c.submission.tls_listen.empty());
         }},
        {"[submission]\ntrusted_networks = []\n",
         [](const Config& c) { EXPECT_TRUE(c.submission.trusted_networks.empty()); }},
        {"[submission]\ntrusted_networks = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n",
         [](const Config& c) {
             const auto& n = c.submission.trusted_networks;
             ASSERT_EQ(n.size(), 3u);
             EXPECT_EQ(n[0].prefix, 8u);
             EXPECT_EQ(n[1].prefix, 32u);
             EXPECT_EQ(n[1].addr.size(), 16u);
             EXPECT_EQ(n[2].prefix, 32u);
             EXPECT_EQ(n[2].text, "192.0.2.7");
             EXPECT_TRUE(net_contains(n, "::ffff:10.9.8.7"));
             EXPECT_FALSE(net_contains(n, "127.0.0.1"));
         }},
        {"[submission]\nmax_message_size = 1048576\nmax_recipients = 1\nmax_bad_commands = 3\n"
         "max_connections = 10\nmax_connections_per_ip = 2\ncommand_timeout = "
         "\"90s\"\ndata_timeout = \"500ms\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.submission.max_message_size, 1048576u);
             EXPECT_EQ(c.submission.max_recipients, 1u);
             EXPECT_EQ(c.submission.max_bad_commands, 3u);
             EXPECT_EQ(c.submission.max_connections, 10u);
             EXPECT_EQ(c.submission.max_connections_per_ip, 2u);
             EXPECT_EQ(c.submission.command_timeout, 90s);
             EXPECT_EQ(c.submission.data_timeout, 500ms);
         }},
        {"[delivery]\nport = 2525\nretry_schedule = [\"30s\"]\nmax_concurrency = "
         "5\nmax_per_destination = 1\n"
         "connect_timeout = \"5s\"\ngreeting_timeout = \"6s\"\ncommand_timeout = \"7s\"\n"
         "data_init_timeout = \"8s\"\ndata_block_timeout = \"9s\"\ndata_done_timeout = \"2w\"\n"
         "allow_loopback_mx = true\n",
         [](const Config& c) {
             EXPECT_EQ(c.delivery.port, 2525);
             EXPECT_EQ(c.delivery.retry_schedule, (std::vector<Duration>{30s}));
             EXPECT_EQ(c.delivery.max_concurrency, 5u);
             EXPECT_EQ(c.delivery.max_per_destination, 1u);
             EXPECT_EQ(c.delivery.connect_timeout, 5s);
             EXPECT_EQ(c.delivery.greeting_timeout, 6s);
             EXPECT_EQ(c.delivery.command_timeout, 7s);
             EXPECT_EQ(c.delivery.data_init_timeout, 8s);
             EXPECT_EQ(c.delivery.data_block_timeout, 9s);
             EXPECT_EQ(c.delivery.data_done_timeout, 336h);
             EXPECT_TRUE(c.delivery.allow_loopback_mx);
         }},
        {"[policy]\ndefault_mode = \"tls-only\"\nescrow_after = \"0s\"\nmta_sts = false\ndane = "
         "false\n",
         [](const Config& c) {
             EXPECT_EQ(c.policy.default_mode, SenderMode::tls_only);
             EXPECT_EQ(c.policy.escrow_after, 0s);  // zero = escrow at the first failure
             EXPECT_FALSE(c.policy.mta_sts);
             EXPECT_FALSE(c.policy.dane);
         }},
        {"[policy]\ndefault_mode = \"escrow-always\"\n",
         [](const Config& c) { EXPECT_EQ(c.policy.default_mode, SenderMode::escrow_always); }},
        {"[delivery]\ndelay_warning_time = \"0s\"\n[escrow]\nnotify_sender = []\n",
         [](const Config& c) {
             EXPECT_EQ(c.delivery.delay_warning_time, 0s);  // zero = no delay notifications
             EXPECT_TRUE(c.escrow.notify_sender.empty());
         }},
        {"[delivery]\nbind_address = \"192.0.2.25\"\nbind_address6 = \"2001:DB8:0::25\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.delivery.bind_address, "192.0.2.25");
             EXPECT_EQ(c.delivery.bind_address6, "2001:db8::25");  // canonical form
         }},
        {"[escrow]\nnotify_sender = [\"escrow-always\", \"tls-only\"]\n",
         [](const Config& c) {
             EXPECT_EQ(c.escrow.notify_sender, (std::vector<std::string>{"escrow-always", "tls-only"}));
         }},
        {"[policy]\ndefault_mode = \"opportunistic\"\n",
         [](const Config& c) { EXPECT_EQ(c.policy.default_mode, SenderMode::opportunistic); }},
        {"[escrow]\nlisten = \"[::1]:8443\"\nurl = \"https://[::1]:8443/portal\"\nexpiry = "
         "\"1w\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.escrow.listen, "[::1]:8443");
             EXPECT_EQ(c.escrow.url, "https://[::1]:8443/portal");
             EXPECT_EQ(c.escrow.expiry, 168h);
         }},
        {"[store]\nbackend = \"postgres\"\ndsn = \"postgresql://mw@db/mailward\"\ncommit_interval "
         "= \"5ms\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.store.backend, "postgres");
             EXPECT_EQ(c.store.dsn, "postgresql://mw@db/mailward");
             EXPECT_EQ(c.store.commit_interval, 5ms);
         }},
        {"[server]\nhostname = \"mx.example.com\"\n[store]\nnode = \"Relay-2\"\nlease_time = \"10s\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.store.node, "Relay-2");
             EXPECT_EQ(node_name(c), "Relay-2");
             EXPECT_EQ(c.store.lease_time, 10s);
         }},
        {"[server]\nhostname = \"mx.example.com\"\n",
         [](const Config& c) { EXPECT_EQ(node_name(c), "mx.example.com"); }},
        {"[server]\nlog_level = \"off\"\nhostname = \"mx-1.Example.COM\"\n",
         [](const Config& c) {
             EXPECT_EQ(c.server.log_level, "off");
             EXPECT_EQ(c.server.hostname, "mx-1.Example.COM");
         }},
        // Dotted keys and inline tables are ordinary TOML spellings of the same sections.
        {"server.hostname = \"a.example\"\ndelivery = { port = 587 }\n",
         [](const Config& c) {
             EXPECT_EQ(c.server.hostname, "a.example");
             EXPECT_EQ(c.delivery.port, 587);
         }},
        // parse() has no file directory: relative paths stay relative to the working directory.
        {"[server]\ndata_dir = \"./spool/../spool2\"\n",
         [](const Config& c) { EXPECT_EQ(c.server.data_dir, "spool2"); }},
    };
    for (const auto& c : cases) {
        ConfigError err;
        auto cfg = parse_text(c.toml, err);
        ASSERT_TRUE(cfg.has_value()) << c.toml << "\n" << err.message;
        EXPECT_TRUE(err.message.empty());
        c.check(*cfg);
    }
}

TEST(ConfigParse, AllLogLevels) {
    for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
        ConfigError err;
        auto cfg = parse_text(std::string("[server]\nlog_level = \"") + level + "\"\n", err);
        ASSERT_TRUE(cfg.has_value()) << level << ": " << err.message;
        EXPECT_EQ(cfg->server.log_level, level);
    }
}

TEST(ConfigParse, NeverThrowsOnGarbage) {
    const std::string cases[] = {
        std::string("\0\0\0", 3),
        "[",
        "]",
        "=",
        "\xff\xfe",
        "[server]\nhostname = \"\xc3\x28\"\n",
        "a = [1, \"x\", {b = 2}]",
        "[a.b.c.d.e]\n",
        std::string(10000, '['),
        "x = 1979-05-27T07:32:00Z",
        "[server]\nhostname = 1979-05-27\n",
        "[delivery]\nport = 99999999999999999999\n",
    };
    for (const auto& text : cases) {
        ConfigError err;
        Result<Config> cfg = Config{};
        EXPECT_NO_THROW(cfg = parse_text(text, err));
        EXPECT_FALSE(cfg.has_value());
        EXPECT_EQ(err.message.rfind("t.toml", 0), 0u) << err.message;
    }
}

// Found by fuzz_config: a key or value with control characters must not break the error line.
TEST(ConfigParse, ProblemsAreOnePrintableLine) {
    const std::string cases[] = {
        "\"a\\nb\\u001b[31m\" = 1\n",                         // an unknown key holding LF and ESC
        "[server]\nhostname = \"x\\ny\"\n",                   // a value holding LF
        std::string("0BBBBB2policy.Fcore0Fsy=t\x0e0orey=0"),  // a raw control character (TOML error)
    };
    for (const auto& text : cases) {
        ConfigError err;
        auto cfg = parse(text, "t.toml", err, FileChecks::skip);
        ASSERT_FALSE(cfg.has_value()) << text;
        ASSERT_FALSE(err.problems.empty());
        for (const auto& p : err.problems) {
            EXPECT_EQ(p.rfind("t.toml", 0), 0u) << p;
            for (char c : p) EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) << p;
        }
    }
}

TEST(ConfigDefaults, MatchDocumentedValues) {
    const Config c = defaults();
    EXPECT_TRUE(c.source.empty());
    EXPECT_EQ(c.server.hostname, "localhost");
    EXPECT_EQ(c.server.data_dir, "var");
    EXPECT_EQ(c.server.log_level, "info");
    ASSERT_EQ(c.submission.listen.size(), 1u);
    EXPECT_EQ(c.submission.listen[0].to_string(), "127.0.0.1:2525");
    EXPECT_TRUE(c.submission.tls_listen.empty());
    EXPECT_TRUE(c.submission.cert.empty());
    EXPECT_TRUE(c.submission.key.empty());
    ASSERT_EQ(c.submission.trusted_networks.size(), 2u);
    EXPECT_EQ(c.submission.trusted_networks[0].text, "127.0.0.0/8");
    EXPECT_EQ(c.submission.trusted_networks[1].text, "::1/128");
    EXPECT_TRUE(net_contains(c.submission.trusted_networks, "127.0.0.1"));
    EXPECT_TRUE(net_contains(c.submission.trusted_networks, "127.255.0.9"));
    EXPECT_TRUE(net_contains(c.submission.trusted_networks, "::ffff:127.0.0.1"));
    EXPECT_TRUE(net_contains(c.submission.trusted_networks, "::1"));
    EXPECT_FALSE(net_contains(c.submission.trusted_networks, "10.0.0.1"));
    EXPECT_FALSE(net_contains(c.submission.trusted_networks, "::2"));
    EXPECT_EQ(c.submission.max_message_size, 50u * 1024 * 1024);
    EXPECT_EQ(c.submission.max_recipients, 1000u);
    EXPECT_EQ(c.submission.max_bad_commands, 20u);
    EXPECT_EQ(c.submission.max_connections, 1000u);
    EXPECT_EQ(c.submission.max_connections_per_ip, 100u);
    EXPECT_EQ(c.submission.command_timeout, 5min);
    EXPECT_EQ(c.submission.data_timeout, 10min);
    EXPECT_TRUE(c.dns.servers.empty());
    EXPECT_TRUE(c.dns.trust_anchor_file.empty());
    EXPECT_EQ(c.dns.timeout, 10s);
    EXPECT_EQ(c.delivery.port, 25);
    EXPECT_TRUE(c.delivery.ca_file.empty());
    EXPECT_EQ(c.delivery.retry_schedule, (std::vector<Duration>{1min, 5min, 15min, 1h}));
    EXPECT_EQ(c.delivery.max_queue_lifetime, 120h);
    EXPECT_EQ(c.delivery.delay_warning_time, 4h);
    EXPECT_EQ(c.escrow.notify_sender, std::vector<std::string>{"tls-or-escrow"});
    EXPECT_EQ(c.delivery.max_concurrency, 100u);
    EXPECT_EQ(c.delivery.max_per_destination, 10u);
    EXPECT_EQ(c.delivery.connect_timeout, 30s);
    EXPECT_EQ(c.delivery.greeting_timeout, 5min);
    EXPECT_EQ(c.delivery.command_timeout, 5min);
    EXPECT_EQ(c.delivery.data_init_timeout, 2min);
    EXPECT_EQ(c.delivery.data_block_timeout, 3min);
    EXPECT_EQ(c.delivery.data_done_timeout, 10min);
    EXPECT_FALSE(c.delivery.allow_loopback_mx);  // loop protection on by default
    EXPECT_EQ(c.policy.default_mode, SenderMode::tls_or_escrow);
    EXPECT_EQ(c.policy.escrow_after, 1h);
    EXPECT_TRUE(c.policy.mta_sts);
    EXPECT_TRUE(c.policy.dane);
    EXPECT_EQ(c.escrow.listen, "127.0.0.1:8443");
    EXPECT_TRUE(parse_endpoint(c.escrow.listen).has_value());
    EXPECT_EQ(c.escrow.url, "https://localhost:8443");
    EXPECT_TRUE(c.escrow.master_key_file.empty());
    EXPECT_EQ(c.escrow.expiry, 720h);
    EXPECT_EQ(c.store.backend, "sqlite");
    EXPECT_TRUE(c.store.dsn.empty());
    EXPECT_EQ(c.store.commit_interval, 0ms);
    EXPECT_TRUE(c.store.node.empty());
    EXPECT_EQ(c.store.lease_time, 2min);
}

TEST(ConfigDefaults, EmptyFileEqualsDefaults) {
    ConfigError err;
    auto cfg = parse_text("", err);
    ASSERT_TRUE(cfg.has_value());
    const Config d = defaults();
    EXPECT_EQ(cfg->submission.trusted_networks.size(), d.submission.trusted_networks.size());
    EXPECT_EQ(cfg->delivery.retry_schedule, d.delivery.retry_schedule);
    EXPECT_EQ(cfg->server.data_dir, d.server.data_dir);
}

TEST(SenderMode, RoundTrips) {
    struct Case {
        SenderMode mode;
        const char* text;
    };
    const Case cases[] = {{SenderMode::tls_or_escrow, "tls-or-escrow"},
                          {SenderMode::tls_only, "tls-only"},
                          {SenderMode::escrow_always, "escrow-always"},
                          {SenderMode::opportunistic, "opportunistic"}};
    for (const auto& c : cases) {
        EXPECT_EQ(to_string(c.mode), c.text);
        EXPECT_EQ(parse_sender_mode(c.text), c.mode);
    }
    for (const char* bad : {"", "tls_only", "TLS-ONLY", "none", "tls-only "}) {
        EXPECT_FALSE(parse_sender_mode(bad).has_value()) << bad;
    }
}

TEST(InDataDir, ResolvesRelativePaths) {
    Config c = defaults();
    c.server.data_dir = "/var/lib/mailward";
    EXPECT_EQ(in_data_dir(c, "master.key"), "/var/lib/mailward/master.key");
    EXPECT_EQ(in_data_dir(c, "tls/cert.pem"), "/var/lib/mailward/tls/cert.pem");
    EXPECT_EQ(in_data_dir(c, "/etc/mailward/cert.pem"), "/etc/mailward/cert.pem");
    EXPECT_EQ(in_data_dir(c, ""), "/var/lib/mailward");
    EXPECT_EQ(in_data_dir(defaults(), "queue.db"), "var/queue.db");
}

TEST(ConfigParse, StaticDomainPolicy) {
    ConfigError err;
    auto cfg =
        parse("[policy.domains]\n\"TLS.Example.test\" = \"verify\"\n\"dane.example.test\" = \"dane\"\n", "t.toml", err);
    ASSERT_TRUE(cfg) << err.message;
    ASSERT_EQ(cfg->policy.domains.size(), 2u);
    EXPECT_EQ(cfg->policy.domains.at("tls.example.test"), "verify");
    EXPECT_EQ(cfg->policy.domains.at("dane.example.test"), "dane");

    struct Bad {
        const char* text;
        const char* want;
    };
    const Bad bad[] = {
        {"[policy.domains]\n\"a.example\" = \"strong\"\n", "t.toml:2: key 'policy.domains.a.example'"},
        {"[policy.domains]\n\"a.example\" = 3\n", "policy.domains.a.example"},
        {"[policy]\ndomains = \"verify\"\n", "policy.domains"},
        {"[policy.domains]\n\"bad domain!\" = \"verify\"\n", "policy.domains.bad domain!"},
    };
    for (const auto& b : bad) {
        ConfigError e;
        EXPECT_FALSE(parse(b.text, "t.toml", e)) << b.text;
        EXPECT_NE(e.message.find(b.want), std::string::npos) << e.message;
    }
}
