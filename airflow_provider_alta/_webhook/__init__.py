"""The webhook wake-up: the contract between operator, receiver and trigger, the receiver, the mailboxes."""
