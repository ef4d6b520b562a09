"""``/admin``: the manual clock."""
