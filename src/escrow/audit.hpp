// The escrow audit chain: each row of a message's audit log carries a keyed hash (the key holder's
// mac_hex, purpose "audit") over the previous row's hash and its own fields, so a row changed,
// removed or inserted anywhere but at the end breaks the chain, and only the holder of the master
// key can extend it. verify() walks a message's rows and names the first one that does not fit.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "escrow/keys.hpp"
#include "store/escrow_store.hpp"

namespace mailward::escrow {

// The chain function the store calls when it appends a row (see store::AuditChain).
store::AuditChain audit_chain(const KeyHolder& keys);

struct AuditVerdict {
    bool intact = true;
    std::size_t rows = 0;
    std::size_t first_bad = 0;  // 1-based row number of the first row that breaks the chain
    std::string problem;        // one line, "" when intact
};

AuditVerdict verify_audit(const std::vector<store::EscrowAuditEntry>& rows, const KeyHolder& keys);

}  // namespace mailward::escrow
