// Turns SIGTERM/SIGINT into a plain function call on an ordinary thread, so shutdown never
// runs inside a signal handler.
#pragma once

namespace elexirion::app {

// Blocks SIGTERM and SIGINT in the calling thread (call before starting any other thread so
// every thread inherits the mask) and returns.
void BlockTerminationSignals();

// Waits (sigwait) for SIGTERM or SIGINT and returns the signal number.
int WaitForTerminationSignal();

}  // namespace elexirion::app
