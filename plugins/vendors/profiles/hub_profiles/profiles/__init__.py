"""The profiles shipped with the package (data only; a package so resources find it)."""
