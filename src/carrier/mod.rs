//! Carriers that deliver messages (the built-in simulator, SMPP). Empty until the Sending
//! issue: the dispatcher will drive carriers through a trait defined here, so nothing above
//! `service` ever knows which carrier or protocol is in use.
