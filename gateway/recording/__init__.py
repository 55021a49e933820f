"""What the gateway keeps of each exchange: records, redaction, the recorder, journal, logbook."""
