"""One thin module per DVC stage: read inputs, call the recause library, write outputs atomically."""
