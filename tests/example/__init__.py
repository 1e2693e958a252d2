"""The example service: its manifest, its own tests, and the end-to-end trace harness."""
