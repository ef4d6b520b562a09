"""The access packages a caller may request."""
