"""The loyalty core's storefront API, served through the Shopify app proxy under `/proxy/v1/api/`."""
