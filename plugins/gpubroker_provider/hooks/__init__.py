"""One module per GPU vendor, each a `VendorHook`; the vendor table is `gpubroker_provider.vendors`."""
