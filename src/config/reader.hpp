// Internal to mailward_config: typed reads of TOML nodes into config fields. Every read checks the
// node's type and value and, on failure, records "FILE:LINE: key 'section.key': what (expected
// ...)" instead of throwing; the caller reports the first problem in file order. Trusts nothing in
// the node.
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace mailward::config::detail {

class Reader {
  public:
    // name is the file name used in messages; relative paths are resolved against base_dir
    // unless it is empty.
    Reader(std::string name, std::filesystem::path base_dir);

    // "NAME:LINE: what", or "NAME: what" when line is 0.
    void problem(std::size_t line, std::string what);
    // "NAME:LINE: key 'KEY': what".
    void key_problem(std::size_t line, std::string_view key, std::string_view what);
    bool ok() const { return problems_.empty(); }
    // Every problem, in file order.
    ConfigError error() const;

    // The key the next reads belong to ("section.key"); remembers the line it was set on.
    void begin_key(std::string key, std::size_t line);
    // The line a key was set on, 0 if the file does not set it.
    std::size_t line_of(std::string_view key) const;

    // On success each read assigns out and returns true; otherwise it records a problem, leaves
    // out unchanged and returns false.
    bool read_string(const toml::node& n, std::string& out, std::string_view expected);
    bool read_choice(const toml::node& n, std::string& out, std::span<const std::string_view> choices);
    // An array of choices (may be empty); a value given twice is an error.
    bool read_choices(const toml::node& n, std::vector<std::string>& out, std::span<const std::string_view> choices);
    bool read_hostname(const toml::node& n, std::string& out);
    bool read_bool(const toml::node& n, bool& out);
    bool read_count(const toml::node& n, std::size_t& out);  // integer >= 1
    bool read_port(const toml::node& n, unsigned short& out);
    bool read_duration(const toml::node& n, Duration& out, bool allow_zero);
    bool read_durations(const toml::node& n, std::vector<Duration>& out);  // non-empty array
    // default_port != 0 lets an element leave the port out.
    bool read_endpoint(const toml::node& n, Endpoint& out, unsigned short default_port);
    bool read_endpoints(const toml::node& n, std::vector<Endpoint>& out, unsigned short default_port);
    bool read_networks(const toml::node& n, std::vector<Network>& out);
    bool read_prefix_length(const toml::node& n, unsigned& out, unsigned max);  // 1..max
    bool read_senders(const toml::node& n, std::vector<std::string>& out);      // sender patterns
    bool read_user_names(const toml::node& n, std::vector<std::string>& out);   // system user names
    bool read_https_url(const toml::node& n, std::string& out);
    // A local address to bind outbound connections to: an IPv4 literal (v6 false) or an IPv6
    // literal (v6 true), written back in canonical form; "" means none.
    bool read_bind_address(const toml::node& n, std::string& out, bool v6);
    bool read_hour(const toml::node& n, unsigned& out);             // integer 0-23
    bool read_mail_address(const toml::node& n, std::string& out);  // local@domain, no spaces or <>
    // A non-empty path; relative paths are joined to base_dir (when set) and normalized.
    bool read_path(const toml::node& n, std::filesystem::path& out);

  private:
    struct Problem {
        std::size_t line;
        std::string message;
    };

    void wrong_type(const toml::node& n, std::string_view expected, std::string_view element = {});
    void bad_value(const toml::node& n, std::string_view what, std::string_view expected);
    // Reads a string element/value, reporting a wrong type; element names it inside an array.
    const std::string* string_of(const toml::node& n, std::string_view expected, std::string_view element = {});

    std::string name_;
    std::filesystem::path base_dir_;
    std::string key_;
    std::map<std::string, std::size_t, std::less<>> lines_;
    std::vector<Problem> problems_;
};

std::size_t line_of(const toml::node& n);
std::string_view type_name(const toml::node& n);
// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace mailward::config::detail
