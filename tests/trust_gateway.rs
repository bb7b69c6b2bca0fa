//! The gateway under hostile and careless clients (trust at the boundary).
