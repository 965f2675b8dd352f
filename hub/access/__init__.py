"""Access: who acts (actors, accounts, passwords, device credentials), what each role may do, and the audit log."""
