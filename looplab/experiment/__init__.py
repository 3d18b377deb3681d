"""The three levels of a run: session (one seed), trial (sessions in parallel), experiment (search)."""
