// The keyed hash chain of the escrow audit log (see audit.hpp). Fields are length-prefixed in the
// hashed text, so no two different rows hash the same.
#include "escrow/audit.hpp"

#include <chrono>

namespace mailward::escrow {
namespace {

void field(std::string& out, std::string_view v) {
    out += std::to_string(v.size());
    out += ':';
    out += v;
    out += ';';
}

std::string row_text(const std::string& prev, const store::EscrowAuditEntry& e) {
    std::string t;
    field(t, prev);
    field(t, e.escrow_id);
    field(t, std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.at.time_since_epoch()).count()));
    field(t, e.event);
    field(t, e.address);
    field(t, e.user_agent);
    field(t, e.detail);
    return t;
}

}  // namespace

store::AuditChain audit_chain(const KeyHolder& keys) {
    return [&keys](const std::string& prev, const store::EscrowAuditEntry& e) {
        return keys.mac_hex("audit", row_text(prev, e));
    };
}

AuditVerdict verify_audit(const std::vector<store::EscrowAuditEntry>& rows, const KeyHolder& keys) {
    AuditVerdict v;
    v.rows = rows.size();
    std::string prev;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& e = rows[i];
        std::string problem;
        if (e.prev_hash != prev)
            problem = "does not follow the row before it (a row was removed, inserted or reordered)";
        else if (keys.mac_hex("audit", row_text(prev, e)) != e.hash)
            problem = "was altered (its hash does not match its content)";
        if (!problem.empty()) {
            v.intact = false;
            v.first_bad = i + 1;
            v.problem = "row " + std::to_string(i + 1) + " (" + e.event + ") " + problem;
            return v;
        }
        prev = e.hash;
    }
    return v;
}

}  // namespace mailward::escrow
