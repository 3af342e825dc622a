package etcd

// HubCount returns how many shared watches are running.
func HubCount() int {
	hubs.Lock()
	defer hubs.Unlock()
	return len(hubs.m)
}
