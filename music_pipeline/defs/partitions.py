import dagster as dg

# One partition per unique audio content; the key is the SHA-256 of the bytes (no commas, stable).
tracks_partitions = dg.DynamicPartitionsDefinition(name="tracks")
