// `mailward config check [-c FILE] [--json]` (like `postfix check`): parses the configuration,
// resolves every file it names, checks the permissions of data_dir and of the secret keys, the
// certificates (expiry, key match, names: RFC 6125 as clients verify) and prints what would listen
// where. One line per finding, ok / warning / error. Exit codes (docs/operations.md "Checking the
// configuration"): 0 no error, 1 an error found, 2 the configuration does not parse.
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>

#include "cli/cli.hpp"
#include "common/privilege.hpp"
#include "common/timefmt.hpp"
#include "policy/preload.hpp"
#include "tls/cert_info.hpp"

namespace mailward::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

constexpr auto kExpiryWarning = std::chrono::hours(24 * 30);  // warn 30 days before a certificate expires

struct Finding {
    std::string level;  // ok, warning, error
    std::string check;  // parse, file, permissions, certificate, listen
    std::string message;
};

struct Listener {
    std::string service;  // submission, submission-tls, portal
    std::string address;
};

class Checker {
  public:
    Checker(const config::Config& cfg, Clock::time_point now) : cfg_(cfg), now_(now) {
        if (auto u = common::find_user(cfg.server.user)) user_ = *u;
    }

    void run();
    const std::vector<Finding>& findings() const { return findings_; }
    const std::vector<Listener>& listeners() const { return listeners_; }

  private:
    void add(std::string level, std::string check, std::string message) {
        findings_.push_back({std::move(level), std::move(check), std::move(message)});
    }
    bool exists_readable(const std::string& key, const fs::path& p, bool required_file = true);
    void owner_and_mode(const std::string& key, const fs::path& p, const struct stat& st, bool secret);
    void certificate(const std::string& key, const fs::path& cert, const fs::path& priv,
                     const std::vector<std::pair<std::string, std::string>>& names, bool name_is_error);
    void data_dir();
    void listen();

    const config::Config& cfg_;
    Clock::time_point now_;
    std::optional<common::SystemUser> user_;
    std::vector<Finding> findings_;
    std::vector<Listener> listeners_;
};

std::string mode_text(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

std::string date_of(Clock::time_point t) { return common::iso8601(t).substr(0, 10); }

std::string days_text(long long days) { return std::to_string(days) + (days == 1 ? " day left" : " days left"); }

// The host of an https URL ("https://portal.example.org:8443/x" -> "portal.example.org"; IPv6
// literals without brackets).
std::string url_host(const std::string& url) {
    auto rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
    return rest.substr(0, rest.find(':'));
}

// Whether the file exists and this process can read it; adds an error finding when not.
bool Checker::exists_readable(const std::string& key, const fs::path& p, bool required_file) {
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
        add("error", "file", key + " " + p.string() + ": does not exist");
        return false;
    }
    if (required_file && !fs::is_regular_file(st)) {
        add("error", "file", key + " " + p.string() + ": is not a regular file");
        return false;
    }
    if (::access(p.c_str(), R_OK) != 0) {
        add("error", "file",
            key + " " + p.string() + ": cannot be read by this user (uid " + std::to_string(::getuid()) + ")");
        return false;
    }
    return true;
}

// Secrets (private keys, the master key) must be private to their owner; their owner must be root
// or the [server] user. data_dir: not open to others.
void Checker::owner_and_mode(const std::string& key, const fs::path& p, const struct stat& st, bool secret) {
    const std::string what = key + " " + p.string();
    const bool owner_ok = st.st_uid == 0 || (user_ && st.st_uid == user_->uid);
    if (!owner_ok) {
        add("error", "permissions",
            what + ": owned by uid " + std::to_string(st.st_uid) + ", not root or the [server] user '" +
                cfg_.server.user + "'");
    }
    const mode_t m = st.st_mode;
    if (secret && (m & 077) != 0) {
        add("error", "permissions",
            what + ": readable by group or others (mode " + mode_text(m) + "); chmod 600 " + p.string());
    } else if (!secret && (m & 007) != 0) {
        add("error", "permissions", what + ": open to others (mode " + mode_text(m) + "); chmod 700 " + p.string());
    } else if (!secret && (m & 070) != 0) {
        add("warning", "permissions", what + ": open to its group (mode " + mode_text(m) + "); 0700 is expected");
    } else if (owner_ok) {
        add("ok", "permissions", what + ": mode " + mode_text(m) + ", owner uid " + std::to_string(st.st_uid));
    }
}

void Checker::certificate(const std::string& key, const fs::path& cert, const fs::path& priv,
                          const std::vector<std::pair<std::string, std::string>>& names, bool name_is_error) {
    const bool cert_ok = exists_readable(key + ".cert", cert);
    bool key_ok = false;
    if (!priv.empty() && exists_readable(key + ".key", priv)) {
        key_ok = true;
        struct stat st {};
        if (::stat(priv.c_str(), &st) == 0) owner_and_mode(key + ".key", priv, st, true);
    }
    if (!cert_ok) return;
    std::vector<std::string> wanted;
    for (const auto& n : names) wanted.push_back(n.second);
    auto info = tls::inspect_certificate(cert, key_ok ? priv : fs::path(), wanted);
    const std::string what = key + ".cert " + cert.string();
    if (!info.error.empty()) {
        add("error", "certificate", what + ": " + info.error);
        return;
    }
    const auto days_left = std::chrono::duration_cast<std::chrono::hours>(info.not_after - now_).count() / 24;
    if (info.not_before > now_) {
        add("error", "certificate", what + ": not valid before " + common::iso8601(info.not_before));
    } else if (info.not_after <= now_) {
        add("error", "certificate", what + ": expired on " + date_of(info.not_after) + " (" + info.subject + ")");
    } else if (info.not_after - now_ < kExpiryWarning) {
        add("warning", "certificate",
            what + ": expires on " + date_of(info.not_after) + " (" + days_text(days_left) + ")");
    } else {
        add("ok", "certificate",
            what + ": valid until " + date_of(info.not_after) + " (" + days_text(days_left) + "), " + info.subject);
    }
    if (key_ok) {
        if (!info.key_error.empty()) {
            add("error", "certificate", key + ".key " + priv.string() + ": " + info.key_error);
        } else if (info.key_matches == false) {
            add("error", "certificate",
                key + ".key " + priv.string() + ": does not match the certificate " + cert.string());
        } else {
            add("ok", "certificate", key + ".key " + priv.string() + ": matches the certificate");
        }
    }
    std::string listed;
    for (const auto& n : info.names) listed += (listed.empty() ? "" : ", ") + n;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (info.covers[i]) {
            add("ok", "certificate", what + ": covers " + names[i].second + " (" + names[i].first + ")");
        } else {
            add(name_is_error ? "error" : "warning", "certificate",
                what + ": does not cover " + names[i].second + " (" + names[i].first + "); it names " +
                    (listed.empty() ? info.subject : listed));
        }
    }
}

void Checker::data_dir() {
    const auto& dir = cfg_.server.data_dir;
    struct stat st {};
    for (const auto& d : cfg_.dkim)  // read by serve as root, before the privilege drop
        if (::stat(d.key_file.c_str(), &st) == 0) owner_and_mode("dkim.key_file", d.key_file, st, true);
    if (::stat(dir.c_str(), &st) != 0) {
        add("warning", "file", "server.data_dir " + dir.string() + ": does not exist yet (serve creates it, 0700)");
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        add("error", "file", "server.data_dir " + dir.string() + ": is not a directory");
        return;
    }
    owner_and_mode("server.data_dir", dir, st, false);
    const auto master = config::in_data_dir(
        cfg_, cfg_.escrow.master_key_file.empty() ? fs::path("master.key") : cfg_.escrow.master_key_file);
    if (::stat(master.c_str(), &st) != 0) {
        add("ok", "file", "escrow.master_key_file " + master.string() + ": not made yet (serve makes it, 0600)");
    } else {
        owner_and_mode("escrow.master_key_file", master, st, true);
    }
}

void Checker::listen() {
    std::map<std::string, std::string> taken;  // address -> service
    auto one = [&](const std::string& service, const std::string& address, unsigned short port,
                   const std::string& what) {
        listeners_.push_back({service, address});
        if (auto it = taken.find(address); it != taken.end()) {
            add("error", "listen", service + " " + address + ": also configured for " + it->second);
            return;
        }
        taken.emplace(address, service);
        add("ok", "listen",
            service + " " + address + ": " + what +
                (port < 1024 ? " (port below 1024: serve must start as root or with CAP_NET_BIND_SERVICE)" : ""));
    };
    for (const auto& e : cfg_.submission.listen)
        one("submission", e.to_string(), e.port, "SMTP submission, STARTTLS, AUTH after TLS");
    for (const auto& e : cfg_.submission.tls_listen)
        one("submission-tls", e.to_string(), e.port, "SMTP submission over implicit TLS (RFC 8314)");
    auto portal = config::parse_endpoint(cfg_.escrow.listen);
    if (portal) one("portal", portal->to_string(), portal->port, "recipients' portal (HTTPS), URL " + cfg_.escrow.url);
}

void Checker::run() {
    if (cfg_.source.empty()) add("warning", "file", "no -c FILE: checking the embedded defaults");
    if (!user_) {
        add("warning", "permissions",
            "server.user '" + cfg_.server.user + "': no such system user (serve started as root refuses to run)");
    }
    data_dir();

    // The submission listeners' certificate: [submission] cert/key, else the self-signed one serve
    // makes in data_dir/tls. The portal uses [escrow] cert/key, else the submission certificate.
    const std::string host = cfg_.server.hostname;
    const std::string portal_host = url_host(cfg_.escrow.url);
    fs::path sub_cert = cfg_.submission.cert, sub_key = cfg_.submission.key;
    const bool self_signed = sub_cert.empty();
    if (self_signed) {
        sub_cert = cfg_.server.data_dir / "tls" / "submission.crt";
        sub_key = cfg_.server.data_dir / "tls" / "submission.key";
    }
    std::vector<std::pair<std::string, std::string>> sub_names = {{"server.hostname", host}};
    if (cfg_.escrow.cert.empty()) sub_names.emplace_back("the host of escrow.url", portal_host);
    if (self_signed && !fs::exists(sub_cert)) {
        add("warning", "certificate",
            "submission.cert: not set; serve makes a self-signed certificate for " + host + " in " +
                sub_cert.parent_path().string() + " on first start (clients cannot verify it)");
    } else {
        certificate("submission", sub_cert, sub_key, sub_names, true);
    }
    if (!cfg_.escrow.cert.empty())
        certificate("escrow", cfg_.escrow.cert, cfg_.escrow.key, {{"the host of escrow.url", portal_host}}, true);

    if (!cfg_.delivery.ca_file.empty() && exists_readable("delivery.ca_file", cfg_.delivery.ca_file)) {
        auto info = tls::inspect_certificate(cfg_.delivery.ca_file);
        if (!info.error.empty()) {
            add("error", "certificate", "delivery.ca_file " + cfg_.delivery.ca_file.string() + ": " + info.error);
        } else {
            add("ok", "certificate",
                "delivery.ca_file " + cfg_.delivery.ca_file.string() + ": " + std::to_string(info.count) +
                    " certificate" + (info.count == 1 ? "" : "s"));
        }
    }
    if (!cfg_.policy.preload_file.empty() && exists_readable("policy.preload_file", cfg_.policy.preload_file)) {
        std::string error;
        auto list = policy::load_preload(cfg_.policy.preload_file, error);
        const std::string what = "policy.preload_file " + cfg_.policy.preload_file.string();
        if (!list) {
            add("error", "file", what + ": " + error);
        } else if (list->expired(now_)) {
            add("warning", "file", what + ": expired on " + date_of(*list->expires) + " (its entries are not used)");
        } else {
            add("ok", "file", what + ": " + std::to_string(list->domains.size()) + " domains");
        }
    }
    if (!cfg_.dns.trust_anchor_file.empty() && exists_readable("dns.trust_anchor_file", cfg_.dns.trust_anchor_file)) {
        std::error_code ec;
        if (fs::file_size(cfg_.dns.trust_anchor_file, ec) == 0 || ec) {
            add("error", "file", "dns.trust_anchor_file " + cfg_.dns.trust_anchor_file.string() + ": is empty");
        } else {
            add("ok", "file", "dns.trust_anchor_file " + cfg_.dns.trust_anchor_file.string() + ": readable");
        }
    }
    listen();
}

void check(const Options& opts) {
    const auto source = opts.config_file.empty() ? std::string("(embedded defaults)") : opts.config_file;
    config::Config cfg;
    if (opts.config_file.empty()) {
        cfg = config::defaults();
    } else {
        config::ConfigError err;
        auto loaded = config::load(opts.config_file, err);
        if (!loaded) {
            auto problems = err.problems.empty() ? std::vector<std::string>{err.message} : err.problems;
            if (opts.json) {
                auto arr = nlohmann::json::array();
                for (const auto& p : problems) arr.push_back({{"level", "error"}, {"check", "parse"}, {"message", p}});
                std::cout << nlohmann::json{{"config", source},
                                            {"findings", arr},
                                            {"listen", nlohmann::json::array()},
                                            {"errors", problems.size()},
                                            {"warnings", 0}}
                                 .dump(2)
                          << "\n";
            } else {
                for (const auto& p : problems) std::cout << "error: " << p << "\n";
                std::cout << "mailward config check: " << source << " does not parse\n";
            }
            // The contract's one line on stderr: the first problem, as serve would report it.
            throw Failure(problems.front(), 2);
        }
        cfg = std::move(*loaded);
    }
    Checker c(cfg, Clock::now());
    c.run();
    std::size_t errors = 0, warnings = 0;
    for (const auto& f : c.findings()) {
        errors += f.level == "error";
        warnings += f.level == "warning";
    }
    if (opts.json) {
        auto arr = nlohmann::json::array();
        for (const auto& f : c.findings())
            arr.push_back({{"level", f.level}, {"check", f.check}, {"message", f.message}});
        auto listen = nlohmann::json::array();
        for (const auto& l : c.listeners()) listen.push_back({{"service", l.service}, {"address", l.address}});
        std::cout << nlohmann::json{{"config", source},
                                    {"findings", arr},
                                    {"listen", listen},
                                    {"errors", errors},
                                    {"warnings", warnings}}
                         .dump(2)
                  << "\n";
    } else {
        for (const auto& f : c.findings()) std::cout << f.level << ": " << f.message << "\n";
        std::cout << "mailward config check: " << source << ": " << errors << " error" << (errors == 1 ? "" : "s")
                  << ", " << warnings << " warning" << (warnings == 1 ? "" : "s") << "\n";
    }
    if (errors > 0) {
        throw Failure("config check: " + source + ": " + std::to_string(errors) + " error" + (errors == 1 ? "" : "s") +
                          " (the error: lines above)",
                      1);
    }
}

}  // namespace

void add_config(CLI::App& app, Options& opts) {
    auto* c = app.add_subcommand("config", "check the configuration");
    c->require_subcommand(1);
    auto* k = c->add_subcommand("check", "check the configuration, its files, permissions and certificates");
    add_common(k, opts, true);
    k->callback([&opts] { check(opts); });
}

}  // namespace mailward::cli
