// The chat page's script (see docs/web.md).
