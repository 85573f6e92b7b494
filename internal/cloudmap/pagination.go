package cloudmap

// defaultPage is the page size of every Cloud Map listing when MaxResults
// is not given.
const defaultPage = 100

// pageSize applies Cloud Map's default to maxResults; the model's bounds
// are checked by the generated validation, and in-process callers' zero
// means the default.
func pageSize(maxResults int32) int {
	if maxResults <= 0 {
		return defaultPage
	}
	return int(maxResults)
}

// start decodes NextToken for a listing described by scope; "" means the
// first page.
func (s *Service) start(scope, nextToken string) (string, error) {
	pos, err := s.tokens.Decode(scope, nextToken)
	if err != nil {
		return "", invalidInput("Invalid NextToken: it is malformed, expired, or was issued for a different request. Repeat the request without NextToken to start again.")
	}
	return pos, nil
}
