// Internal to `mailward policy` (policy_*.cpp only): the input checks, store access and output
// helpers the subcommands share (policy_common.cpp), and one entry point per subcommand, which
// add_policy (policy_cmd.cpp) registers. Command-line input is untrusted and checked by the
// checked_* functions; each throws Failure with exit code 2 and one line naming the problem.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/cli.hpp"
#include "store/store.hpp"

namespace mailward::cli::policy_cli {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using nlohmann::json;

// ---- input checks (policy_common.cpp) ----

std::string lower(std::string s);
// A mail domain (RFC 1035 2.3.1, A-labels per RFC 5890), lower case, no final dot.
std::string checked_domain(const std::string& raw);
std::string checked_level(const std::string& raw);  // none, may, encrypt, verify or dane
std::string checked_reason(const std::string& raw);
// --expires: an ISO 8601 date or date-time, or a duration from now; in the future.
TimePoint checked_expiry(const std::string& raw, TimePoint now);
std::string who_am_i();  // the administrator named in the audit trail

// ---- reading the store (policy_common.cpp) ----

std::unique_ptr<store::Store> open_store(const config::Config& cfg);

template <class T>
T must(Result<T> r, const std::string& what) {
    if (!r) throw Failure("cannot read " + what + " from the policy store: " + r.error().message());
    return std::move(*r);
}

std::optional<store::Override> override_of(store::PolicyStore& ps, const std::string& domain);

// ---- presentation (policy_common.cpp) ----

json time_json(TimePoint t);  // null for the epoch (never set)
json time_json(const std::optional<TimePoint>& t);
json report_json(const std::string& text);  // stored reports are JSON; anything else as a string
json override_json(const store::Override& o, TimePoint now);
std::string override_text(const store::Override& o, TimePoint now);
json learned_json(const store::LearnedPolicy& p);

// ---- the subcommands ----

struct SetArgs {
    std::string domain, level, reason, expires;
};

// policy_cmd.cpp
void list(const Options& opts);
void set(const Options& opts, const SetArgs& a);
void clear(const Options& opts, const std::string& raw);
void forget(const Options& opts, const std::string& raw);
// policy_show.cpp
void show(const Options& opts, const std::string& raw);
// policy_simulate.cpp
void simulate(const Options& opts, const std::string& mode_name, const std::string& since_text, bool tls_required_no,
              const std::string& user);
// policy_export.cpp
void export_policy(const Options& opts, const std::string& format, const std::string& out_path);

}  // namespace mailward::cli::policy_cli
