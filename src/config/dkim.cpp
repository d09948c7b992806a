// [[dkim]] (docs/config.md): an array of tables, one signing key per sender domain (RFC 6376). Reads
// domain, selector, key_file, algorithm and sign_relayed with file:line errors, and checks that every
// key_file exists and is not readable by group or others (stat only: it may be root's, 0600).
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "common/ascii.hpp"
#include "config/dkim_detail.hpp"

namespace mailward::config::detail {
namespace {

constexpr std::array<std::string_view, 2> kAlgorithms{"rsa-sha256", "ed25519-sha256"};
constexpr std::array<std::string_view, 5> kDkimKeys{"domain", "selector", "key_file", "algorithm", "sign_relayed"};

// A selector is one or more dot-separated labels of letters, digits, '-' and '_' (RFC 6376 3.1).
bool selector_ok(std::string_view s) {
    if (s.empty() || s.size() > 63 * 4) return false;
    std::size_t label = 0;
    for (char c : s) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label != 0;
}

std::string line_key(std::size_t index, std::string_view key) {
    return "dkim#" + std::to_string(index) + "." + std::string(key);
}

}  // namespace

void read_dkim(Reader& r, const toml::node& n, Config& c) {
    const toml::array* entries = n.as_array();
    if (entries == nullptr || !entries->is_array_of_tables()) {
        r.key_problem(line_of(n), "dkim",
                      "wrong type: got " + std::string(type_name(n)) +
                          " (expected [[dkim]] tables with domain, selector, key_file)");
        return;
    }
    std::set<std::string> domains;
    for (std::size_t i = 0; i < entries->size(); ++i) {
        const toml::table& t = *(*entries)[i].as_table();
        const std::size_t table_line = t.source().begin.line;
        DkimConfig d;
        bool have_domain = false, have_selector = false, have_key = false;
        for (auto&& [key, node] : t) {
            const std::string full = "dkim." + std::string(key.str());
            const std::size_t line = key.source().begin.line;
            r.begin_key(line_key(i, key.str()), line);  // remembers the line for check_dkim
            r.begin_key(full, line);
            if (key.str() == "domain") {
                std::string host;
                if (r.read_hostname(node, host)) {
                    d.domain = common::ascii::lower(host);
                    have_domain = true;
                    if (!domains.insert(d.domain).second)
                        r.key_problem(line, full,
                                      "domain \"" + d.domain +
                                          "\" has a [[dkim]] entry already (expected one entry per domain; "
                                          "rotate by changing selector and key_file)");
                }
            } else if (key.str() == "selector") {
                if (r.read_string(node, d.selector, "expected a selector, e.g. \"mail2026\"")) {
                    if (!selector_ok(d.selector))
                        r.key_problem(line, full,
                                      "\"" + d.selector +
                                          "\" is not a selector (expected letters, digits, '-', '_' in "
                                          "dot-separated labels, e.g. \"mail2026\")");
                    else have_selector = true;
                }
            } else if (key.str() == "key_file") {
                have_key = r.read_path(node, d.key_file);
            } else if (key.str() == "algorithm") {
                // ed25519-sha256 (RFC 8463) is refused: Debian 12's libopendkim 2.11 leaks memory on
                // every ed25519 signature (src/dkim/dkim.hpp, kEd25519Refusal).
                if (r.read_choice(node, d.algorithm, kAlgorithms) && d.algorithm == "ed25519-sha256")
                    r.key_problem(line, full,
                                  "\"ed25519-sha256\" is not offered: Debian 12's libopendkim 2.11 leaks memory on "
                                  "every ed25519 signature (expected \"rsa-sha256\")");
            } else if (key.str() == "sign_relayed") {
                r.read_bool(node, d.sign_relayed);
            } else {
                std::string hint;
                for (auto k : kDkimKeys)
                    if (edit_distance(key.str(), k) <= 2) hint = " (did you mean 'dkim." + std::string(k) + "'?)";
                r.key_problem(line, full, "unknown key" + hint);
            }
        }
        for (auto [have, name] : {std::pair{have_domain, "domain"}, std::pair{have_selector, "selector"},
                                  std::pair{have_key, "key_file"}}) {
            if (!have && r.line_of(line_key(i, name)) == 0)
                r.key_problem(table_line, "dkim." + std::string(name),
                              "missing in this [[dkim]] entry (expected domain, selector and key_file)");
        }
        c.dkim.push_back(std::move(d));
    }
}

void check_dkim(Reader& r, const Config& cfg, bool open_files) {
    if (!open_files) return;
    for (std::size_t i = 0; i < cfg.dkim.size(); ++i) {
        const auto& d = cfg.dkim[i];
        const std::size_t line = r.line_of(line_key(i, "key_file"));
        if (line == 0 || d.key_file.empty()) continue;
        struct stat st {};
        if (::stat(d.key_file.c_str(), &st) != 0) {
            r.key_problem(line, "dkim.key_file",
                          "cannot read \"" + d.key_file.string() + "\": " + std::strerror(errno) +
                              " (expected a PEM private key; `mailward dkim keygen` makes one)");
        } else if (!S_ISREG(st.st_mode)) {
            r.key_problem(line, "dkim.key_file", "\"" + d.key_file.string() + "\" is not a regular file");
        } else if ((st.st_mode & 077) != 0) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
            r.key_problem(line, "dkim.key_file",
                          "\"" + d.key_file.string() + "\" may be read by group or others (mode " + mode +
                              "; expected 0600 or 0400, owned by root or the [server] user)");
        }
    }
}

}  // namespace mailward::config::detail
