// decide_code(): the rules of one-time code sign-in (CodeRules, escrow_store.hpp) as one decision.
#include "store/code_check.hpp"

#include <sodium.h>

namespace mailward::store {

CodeDecision decide_code(const CodeCounters& counters, const std::optional<LiveCode>& code,
                         const std::string& code_hash, EscrowTime now, const CodeRules& rules) {
    CodeDecision d;
    const bool locked = counters.locked_until && now < *counters.locked_until;
    const bool capped = counters.total_failures >= rules.max_failures;
    if (!code) {
        d.result = locked ? CodeCheck::locked : capped ? CodeCheck::capped : CodeCheck::no_code;
        return d;
    }
    // A short code is guessable: not while locked, not past the cap. A strong one is not.
    if (!code->strong && locked) {
        d.result = CodeCheck::locked;
        return d;
    }
    if (!code->strong && capped) {
        d.result = CodeCheck::capped;
        return d;
    }
    if (code->tries >= rules.max_tries_per_code) {
        d.result = CodeCheck::exhausted;
        return d;
    }
    d.write = true;
    const bool match = code->code_hash.size() == code_hash.size() &&
                       sodium_memcmp(code->code_hash.data(), code_hash.data(), code_hash.size()) == 0;
    if (match) {
        d.result = CodeCheck::accepted;
        d.use_code = true;
        // total_failures stays: the cap counts over the message's whole life.
        d.next = {0, std::nullopt, counters.total_failures, 0};
        d.event = escrow_event::code_accepted;
        return d;
    }
    d.count_try = true;
    // Wrong strong codes are typing errors, not guesses that could succeed: they count in the total
    // and against the code's tries, never towards a lockout.
    const bool strong = code->strong;
    const int failures = counters.failed_logins + (strong ? 0 : 1);
    const int total = counters.total_failures + 1;
    const bool lock = !strong && failures >= rules.lock_after_failures;
    const bool cap = !strong && total >= rules.max_failures;
    const int lockouts = counters.lockouts + (lock ? 1 : 0);
    const auto lock_for = rules.lockout(lockouts);
    d.next = {lock ? 0 : failures, lock ? std::optional<EscrowTime>(now + lock_for) : counters.locked_until, total,
              lockouts};
    d.void_short_codes = lock || cap;
    d.event = lock ? escrow_event::locked : escrow_event::code_failed;
    d.detail = "try " + std::to_string(code->tries + 1) + " of " + std::to_string(rules.max_tries_per_code) +
               (strong ? " (long code)" : "") + "; " + std::to_string(total) + " wrong codes in all";
    if (lock)
        d.detail += "; short codes locked after " + std::to_string(failures) + " wrong in a row, lockout " +
                    std::to_string(lockouts) + " for " + std::to_string(lock_for.count()) + " s";
    if (cap) d.detail += "; the cap of " + std::to_string(rules.max_failures) + " is reached: short codes void";
    d.result = lock ? CodeCheck::locked : cap ? CodeCheck::capped : CodeCheck::wrong;
    return d;
}

}  // namespace mailward::store
