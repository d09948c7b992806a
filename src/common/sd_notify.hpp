// Service readiness for systemd (sd_notify(3), Type=notify): serve says READY=1 once every
// listener of every process listens, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 when
// it starts to drain, and STATUS= lines in between. Every call is a no-op without NOTIFY_SOCKET in
// the environment (started by hand, by a test, or by another supervisor).
#pragma once

#include <string_view>

namespace mailward::common::sd {

// True when NOTIFY_SOCKET is set (the calls below send something).
bool enabled();

// READY=1 with MAINPID (this process) and STATUS=status.
void ready(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload wants it) and STATUS=status.
void reloading(std::string_view status);
// STOPPING=1 and STATUS=status.
void stopping(std::string_view status);
// STATUS=status alone.
void status(std::string_view status);

}  // namespace mailward::common::sd
