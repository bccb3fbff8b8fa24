"""The built-in flavors, one module each; each imports its library only inside its methods."""
