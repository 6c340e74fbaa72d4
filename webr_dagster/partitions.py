"""Dynamic partitions: one per crawl source (file or folder of HTML) and one per web domain."""

from dagster import DynamicPartitionsDefinition

crawl_source_partitions = DynamicPartitionsDefinition(name="crawl_source")
domain_partitions = DynamicPartitionsDefinition(name="domain")
