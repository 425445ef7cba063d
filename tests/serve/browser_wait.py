"""How long a browser test waits for one real event (CI machines can be slow; no wait is for layout)."""

PAGE_TIMEOUT_MS = 180_000
