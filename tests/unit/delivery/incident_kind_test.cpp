// incident_kind() as a table: the incident a TLS failure of the SMTP client stands for, by what the
// client found (TlsFault); a session that fell short of the level without a named fault is
// level_not_met.
#include <gtest/gtest.h>

#include "delivery/classify.hpp"

using namespace mailward;
using outbound::TlsFault;
using store::IncidentKind;

TEST(IncidentKind, FromTheClientsTlsFault) {
    const std::pair<TlsFault, IncidentKind> cases[] = {
        {TlsFault::certificate_changed, IncidentKind::certificate_changed},
        {TlsFault::starttls_missing, IncidentKind::starttls_missing},
        {TlsFault::starttls_refused, IncidentKind::starttls_454},
        {TlsFault::no_session, IncidentKind::handshake_failed},
        {TlsFault::below_level, IncidentKind::level_not_met},
        {TlsFault::none, IncidentKind::level_not_met},
    };
    for (const auto& [fault, want] : cases) {
        outbound::SessionError e;
        e.stage = outbound::Stage::tls_policy;
        e.tls_fault = fault;
        EXPECT_EQ(delivery::incident_kind(e), want) << store::to_string(want);
    }
}
