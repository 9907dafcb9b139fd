"""NRI mode: the plugin a CRI runtime (containerd, CRI-O) asks about every container it creates."""
