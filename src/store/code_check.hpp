// One one-time code check as a pure decision (the rules are CodeRules in escrow_store.hpp), shared by
// every backend: the backend reads the message's sign-in counters and its newest live code inside its
// transaction, calls decide_code(), and writes what the decision says in the same transaction
// (escrow_store.hpp, EscrowStore::check_code). No I/O here, so SQLite and PostgreSQL cannot drift apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/escrow_store.hpp"

namespace mailward::store {

// The counters of EscrowRecord that sign-in changes.
struct CodeCounters {
    int failed_logins = 0;
    std::optional<EscrowTime> locked_until;
    int total_failures = 0;
    int lockouts = 0;
};

// The message's newest live, unexpired code.
struct LiveCode {
    std::string code_hash;
    std::int64_t tries = 0;
    bool strong = false;
};

struct CodeDecision {
    CodeCheck result = CodeCheck::no_code;
    // false: refused before anything changes (no code, locked, capped, exhausted): nothing to write,
    // no audit row. true: write what follows and append the audit row.
    bool write = false;
    bool use_code = false;          // accepted: the code is used up (live = false)
    bool count_try = false;         // wrong: the code's tries + 1
    CodeCounters next;              // the message's counters after the check
    bool void_short_codes = false;  // a lockout or the cap: every live short code of the message is void
    std::string_view event;         // the audit row's event (escrow_event)
    std::string detail;             // and its detail ("" when accepted)
};

// code_hash is compared with the live code's in constant time.
CodeDecision decide_code(const CodeCounters& counters, const std::optional<LiveCode>& code,
                         const std::string& code_hash, EscrowTime now, const CodeRules& rules);

}  // namespace mailward::store
