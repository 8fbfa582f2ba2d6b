"""Repository views: every view is a Source; wrappers and combinators compose them."""
