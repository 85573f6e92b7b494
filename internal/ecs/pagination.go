package ecs

// pageSize checks maxResults against ECS's bounds and applies its default.
func pageSize(maxResults *int32, def, max int) (int, error) {
	if maxResults == nil {
		return def, nil
	}
	n := int(*maxResults)
	if n < 1 || n > max {
		return 0, invalidParameter("maxResults must be between 1 and %d.", max)
	}
	return n, nil
}

// start decodes nextToken for a listing described by scope; "" means the
// first page.
func (s *Service) start(scope, nextToken string) (string, error) {
	pos, err := s.tokens.Decode(scope, nextToken)
	if err != nil {
		return "", invalidParameter("Invalid nextToken: it is malformed, expired, or was issued for a different request. Repeat the request without nextToken to start again.")
	}
	return pos, nil
}
