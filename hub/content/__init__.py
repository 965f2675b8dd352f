"""Content: what comes in from sources or is written here, the editorial workflow that approves it,
speech made from its text, and the media a device fetches. (Built by the content issue; empty now.)

Layer: above delivery (publishing content issues commands), below api/cli/console.
"""
