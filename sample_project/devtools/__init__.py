"""Development-only pages: the mailbox (mail the site sent) and the invalidations panel."""
